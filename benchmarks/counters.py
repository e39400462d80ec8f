"""Per-step counts taken by the profiler: device kernel launches, operator calls, peak memory.

These are counted, never estimated: where the device cannot provide a count,
the function returns None and says why.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from .environment import synchronize


def _is_top_level_aten(event) -> bool:
    """An aten op called from Python/autograd, not from inside another aten op."""
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def _is_device_kernel(event) -> bool:
    """A kernel that ran on the GPU (memcpy/memset excluded; they are not launches we fuse)."""
    if event.device_type != torch.autograd.DeviceType.CUDA:
        return False
    name = event.name.lower()
    return not ("memcpy" in name or "memset" in name)


def count_step(step: Callable[[], object], device: torch.device) -> dict:
    """Profile one call of ``step``; return kernel launches (GPU) and top-level aten ops."""
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    synchronize(device)
    with profile(activities=activities) as prof:
        step()
        synchronize(device)
    events = prof.events()
    ops = sum(1 for e in events if _is_top_level_aten(e))
    kernels = sum(1 for e in events if _is_device_kernel(e)) if device.type == "cuda" else None
    return {"kernel_launches_per_step": kernels, "ops_per_step": ops}


def peak_memory(step: Callable[[], object], device: torch.device) -> tuple[int | None, str]:
    """True peak bytes allocated during one call of ``step`` (parameters and state included).

    GPU: ``max_memory_allocated`` after a reset. CPU: the maximum of the profiler's memory
    timeline, which replays every allocation and free of that step.
    """
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated"
    try:
        from torch.profiler._memory_profiler import MemoryProfileTimeline
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                     record_shapes=True, with_stack=True) as prof:
            step()
        _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(device)
        peak = max((sum(row) for row in sizes), default=0)
        return int(peak), "torch.profiler memory timeline (CPU allocations, one step)"
    except Exception as exc:  # a private profiler API: report why instead of guessing
        warnings.warn(f"CPU peak memory could not be measured: {exc}")
        return None, f"not measured: CPU memory timeline failed ({type(exc).__name__}: {exc})"
