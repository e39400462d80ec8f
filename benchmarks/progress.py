"""Progress lines for long runs: step counts with loss and time left, and the interpreter notice.

Everything here writes to stderr, so stdout keeps only results (and generated text).
The step callbacks run between timed calls, never inside one, so they do not change
any measured time.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def format_seconds(seconds: float) -> str:
    """12.3 -> '12 s', 754 -> '12 min 34 s', 7300 -> '2 h 02 min'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class StepProgress:
    """``progress(done)`` after each of ``total`` steps prints one line
    ``<label> step 30/300 loss 2.3456  elapsed 12 s, about 1 min 48 s left`` every
    ``every`` steps (default ``max(1, total // 10)``) and at least every ``interval_s``
    seconds, and on the last step. ``every=0``: by time only, so a short run prints
    nothing (and its last step only when an earlier line was printed). ``loss()`` returns
    the latest loss or None (no loss in the line). The time left is the mean step time so
    far times the steps still to run.
    """

    def __init__(self, total: int, label: str, *, loss: Callable[[], float | None] | None = None,
                 every: int | None = None, interval_s: float = 10.0, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.label, self.loss = total, label, loss
        self.every = max(1, total // 10) if every is None else every
        self.interval_s, self.out, self.clock = interval_s, out, clock
        self.start = self.last_print = clock()
        self.printed = False

    def __call__(self, done: int) -> None:
        now = self.clock()
        due = (now - self.last_print >= self.interval_s
               or (self.every and done % self.every == 0)
               or (done == self.total and (self.every or self.printed)))
        if not due:
            return
        self.last_print, self.printed = now, True
        elapsed = now - self.start
        left = elapsed / done * (self.total - done)
        loss = self.loss() if self.loss else None
        loss_text = f" loss {loss:.4f}" if loss is not None else ""
        print(f"{self.label} step {done}/{self.total}{loss_text}  elapsed "
              f"{format_seconds(elapsed)}, about {format_seconds(left)} left",
              file=self.out or sys.stderr, flush=True)


def interpreter_notice(name: str, first_step_s: float, steps_left: int, what: str = "steps",
                       out: TextIO | None = None) -> None:
    """One line saying that ``name``'s Triton kernels run in the CPU interpreter and how
    long the rest will take, extrapolated from the first step's measured time."""
    print(f"{name}: Triton kernels run in the interpreter (TRITON_INTERPRET=1, no GPU), "
          f"hundreds of times slower than on a GPU; the first step took "
          f"{first_step_s:.1f} s, so the {steps_left} {what} left take about "
          f"{format_seconds(first_step_s * steps_left)}", file=out or sys.stderr, flush=True)


def uses_interpreter(spec, model) -> bool:
    """Does this version run Triton kernels in the CPU interpreter (v3/v4 without a GPU)?"""
    return bool(spec.describe) and spec.describe(model).get("triton_mode") == "interpreter"


class FirstStepNotice:
    """Step callback that prints ``interpreter_notice`` once, after the first step, then
    hands every step on to ``then`` (a ``StepProgress`` or None)."""

    def __init__(self, name: str, total: int, then: Callable[[int], None] | None = None,
                 what: str = "steps", clock: Callable[[], float] = time.monotonic):
        self.name, self.total, self.then, self.what, self.clock = name, total, then, what, clock
        self.start = clock()

    def __call__(self, done: int) -> None:
        if done == 1:
            interpreter_notice(self.name, self.clock() - self.start, self.total - 1, self.what)
        if self.then:
            self.then(done)
