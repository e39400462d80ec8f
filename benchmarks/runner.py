"""Run one (version, preset, mode) workload and return a ``RunResult``.

Used by every version's CLI (``python -m versionN_* ...``) and by the side-by-side
harness, so each number in the project is produced by the same code.
"""
from __future__ import annotations

from typing import Callable

import torch

from .counters import count_step, peak_memory
from .environment import machine_info, run_timestamp, synchronize
from .noise import WINDOW_S, LoadWatch, busy_reasons
from .schema import RunResult
from .timing import summarize, time_repeats
from .validation import check_device, check_dtype, check_workload
from .workloads import UNTIMED_STEPS, Workload, dtype_label, make_workload


def run_workload(model: torch.nn.Module, *, version: str, preset: str, mode: str,
                 batch_size: int, seq_len: int, device: torch.device, dtype: torch.dtype,
                 steps: int, warmup: int, seed: int = 0, count: bool = True,
                 describe: Callable[[torch.nn.Module], dict] | None = None,
                 loss_fn=None, load_window_s: float = WINDOW_S, corpus=None,
                 on_step: Callable[[int, Workload], None] | None = None) -> RunResult:
    """Warm up, time ``steps`` repeats, then count kernels/ops and peak memory on extra steps.

    The machine's load is sampled for ``load_window_s`` just before and after the timed
    repeats (``benchmarks.noise``) and kept with the result. ``corpus``: train on it
    instead of the Markov chain (``make_workload``); ``on_step(calls_done, workload)``
    after each warm-up or timed call (progress lines, outside the timed region). Bad values
    (steps < 1, warmup < 0, a batch or sequence the model cannot take, an unknown mode,
    device or dtype) raise ``UserError`` before anything runs.
    """
    device, dtype = check_device(device), check_dtype(dtype)
    check_workload(modes=[mode], batch_size=batch_size, seq_len=seq_len, steps=steps,
                   warmup=warmup, max_seq_len=model.config.max_seq_len)
    work = make_workload(model, mode, batch_size, seq_len, device, dtype, seed=seed,
                         loss_fn=loss_fn, train_batches=warmup + steps + UNTIMED_STEPS,
                         corpus=corpus)
    with LoadWatch(load_window_s) as watch:
        seconds = time_repeats(work.step, device, warmup=warmup, repeats=steps,
                               on_step=(lambda done: on_step(done, work)) if on_step else None)
    return result_from_times(model, work, seconds, version=version, preset=preset,
                             batch_size=batch_size, seq_len=seq_len, device=device,
                             dtype=dtype, warmup=warmup, count=count,
                             extra=describe(model) if describe else {}, load=watch.record)


def result_from_times(model: torch.nn.Module, work: Workload, seconds: list[float], *,
                      version: str, preset: str, batch_size: int, seq_len: int,
                      device: torch.device, dtype: torch.dtype, warmup: int, count: bool = True,
                      extra: dict | None = None, load: dict | None = None) -> RunResult:
    """The ``RunResult`` of a workload already timed (alone or interleaved with others).

    The one home of a measurement's counting (profiler: kernels/ops, peak memory) and noise
    flags: ``run_workload``, the side-by-side harness (``benchmarks.compare``) and the
    ablation all build their records here. Counting steps run after timing so that profiler
    overhead never enters a time; the losses are read before they add steps of their own.
    ``load``: the ``LoadWatch.record`` around the timed repeats (None: not watched); the
    result keeps it and the ``busy_reasons`` of it and of the times' spread.
    """
    losses = work.loss_values()
    counts = count_step(work.step, device) if count else {
        "kernel_launches_per_step": None, "ops_per_step": None}
    peak, peak_method = peak_memory(work.step, device) if count else (None, "not measured")
    synchronize(device)
    times = summarize(seconds)
    notes = []
    if device.type != "cuda":
        notes.append("CPU run: no device kernels to count; ops_per_step counts aten operator "
                     "calls instead")
    return RunResult(
        version=version, preset=preset, mode=work.mode, batch_size=batch_size, seq_len=seq_len,
        dtype=dtype_label(dtype), config=model.config.to_dict(), machine=machine_info(device),
        step_time_ms=times, warmup=warmup, tokens_per_step=work.tokens_per_step,
        tokens_per_s=work.tokens_per_step / (times["median"] / 1e3),
        peak_memory_bytes=peak, peak_memory_method=peak_method,
        kernel_launches_per_step=counts["kernel_launches_per_step"],
        ops_per_step=counts["ops_per_step"],
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        loss_floor=work.loss_floor,
        notes=notes, extra=extra or {}, timestamp=run_timestamp(),
        load=load or {}, busy=busy_reasons(load, times["p10"], times["p90"]),
    )
