"""Timing discipline in one place: warm-up, synchronized clocks or device events, medians.

Every number a version reports is produced by these functions, so that all versions
are timed the same way.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds taken by one call of ``fn``, measured with CUDA events on a GPU and a
    synchronized ``perf_counter`` on the CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_repeats(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int,
                 on_step: Callable[[int], None] | None = None) -> list[float]:
    """Run ``warmup`` untimed calls, then return the seconds of ``repeats`` timed calls.

    ``on_step(calls_done)`` runs after every call (warm-up included), outside the timed
    region: progress lines cost no measured time.
    """
    if repeats < 1:
        raise ValueError(f"need at least one timed repeat, got {repeats}")
    report = on_step or (lambda done: None)
    for i in range(warmup):
        fn()
        report(i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = []
    for i in range(repeats):
        seconds.append(time_once(fn, device))
        report(warmup + i + 1)
    return seconds


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int,
                     repeats: int) -> dict[str, list[float]]:
    """Time several functions A, B, A, B, ... so that machine noise hits them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_once(fn, device))
    return times


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(seconds: list[float]) -> dict:
    """Median, p10, p90, min, max (milliseconds) and the repeat count."""
    ms = [s * 1e3 for s in seconds]
    return {"median": statistics.median(ms), "p10": percentile(ms, 10),
            "p90": percentile(ms, 90), "min": min(ms), "max": max(ms), "n": len(ms)}
