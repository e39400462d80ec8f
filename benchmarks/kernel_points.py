"""Per-kernel roofline points: one profiled step, aggregated by operator (CPU) or kernel (GPU) name.

Each record says what is measured, what is counted and what is modelled:

- ``time_ms`` is MEASURED, in one step run under ``torch.profiler`` after the harness's
  warm-up (profiler overhead included; the harness's median is timed without it).
  CPU: the inclusive CPU time of top-level aten ops, the ops the model itself called.
  Inclusive, not self time: ``aten::linear``'s work happens in its nested ``aten::addmm``,
  so self time would leave the GEMM's time under no name. Top-level ops never nest, so
  summing them counts nothing twice. GPU: the device time of each kernel.
- ``flops`` are COUNTED, never estimated from time: the profiler's own count
  (``with_flops``: mm, addmm, bmm, baddbmm, conv, and elementwise mul/add at one FLOP per
  element) on the op or, when the op has none, on the first counted ops nested in it
  (``flops_source`` names them; such a count can be partial, e.g. ``aten::rms_norm`` counts
  its multiplies but not its pow/mean/rsqrt). Scaled-dot-product attention, which the
  profiler does not count, gets ``torch.utils.flop_counter``'s formula on its recorded q/k/v
  shapes: the full S x S score matrix, as the harness's workload FLOPs count it (a causal
  kernel does about half). ``None`` when nothing counted the op: the op keeps its time in the
  record but is not placed on the roofline.
- ``bytes`` is a MINIMUM-TRAFFIC MODEL, not a measurement: every input tensor read once
  (recorded shapes and dtypes), every byte the op newly allocated written once (its outputs,
  from the profiler's memory records, which unlike shapes it records for outputs too), and for
  an in-place op (``aten::add_``) its first input written back. It ignores caches both ways:
  re-reads make real traffic larger, inputs left in cache by the previous op make it smaller.
  ``None`` when an input is a tensor list, whose shapes the profiler does not record.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

from .counters import _is_device_kernel, _is_top_level_aten
from .environment import synchronize

# The profiler's dtype names (C++ type names) -> bytes per element.
_ITEMSIZE = {"double": 8, "float": 4, "c10::Half": 2, "c10::BFloat16": 2,
             "c10::Float8_e4m3fn": 1, "c10::Float8_e5m2": 1, "long int": 8, "int": 4,
             "short int": 2, "signed char": 1, "unsigned char": 1, "bool": 1,
             "c10::complex<float>": 8, "c10::complex<double>": 16}
SDPA_SOURCE = "sdpa formula (torch.utils.flop_counter, full S x S)"


def runs_in_interpreter(extra: dict) -> bool:
    """A row whose Triton kernels ran in the CPU interpreter: its times place nothing."""
    return extra.get("triton_mode") == "interpreter"


def _sdpa_flops(event) -> int | None:
    """FLOPs of an SDPA op (fwd or bwd) from its recorded (B, H, S, D) shapes, else None."""
    name = event.name
    if "scaled_dot_product" not in name or "attention" not in name:
        return None
    shapes = event.input_shapes
    try:
        if "backward" in name:    # every backend's backward takes (grad_out, q, k, v, ...)
            return int(sdpa_backward_flop_count(*shapes[:4]))
        return int(sdpa_flop_count(*shapes[:3]))
    except (AssertionError, ValueError, TypeError):
        return None   # shapes not (B, H, S, D): not counted rather than guessed


def _counted_flops(event, nested: bool = True) -> tuple[int | None, set[str]]:
    """(FLOPs, what counted them) for one op event; (None, set()) when nothing did."""
    if event.flops:
        return int(event.flops), {f"profiler ({event.name})"}
    sdpa = _sdpa_flops(event)
    if sdpa is not None:
        return sdpa, {f"{SDPA_SOURCE} ({event.name})"}
    if not nested:
        return None, set()
    total, sources = 0, set()
    for child in event.cpu_children:
        flops, src = _counted_flops(child)
        if flops is not None:
            total += flops
            sources |= src
    return (total, sources) if sources else (None, set())


def _op_bytes(event, written: int) -> int | None:
    """Minimum traffic of one op: inputs read once + ``written`` (+ in-place target)."""
    read = 0
    for shape, dtype in zip(event.input_shapes, event.input_dtypes):
        if dtype == "TensorList":
            return None
        if dtype in _ITEMSIZE:
            numel = 1
            for dim in shape:
                numel *= dim
            read += numel * _ITEMSIZE[dtype]
    inplace = 0
    if event.name.endswith("_") and event.input_dtypes and event.input_dtypes[0] in _ITEMSIZE:
        first = 1
        for dim in event.input_shapes[0]:
            first *= dim
        inplace = first * _ITEMSIZE[event.input_dtypes[0]]
    return read + max(written, 0) + inplace


def _aggregate(items) -> list[dict]:
    """(name, time_us, flops, sources, bytes) per call -> one record per name, slowest first.

    A name's FLOPs (bytes) are known only when every call's are: a partial sum would put
    the point at a rate that no call achieved.
    """
    by_name: dict[str, dict] = {}
    for name, time_us, flops, sources, nbytes in items:
        r = by_name.setdefault(name, {"name": name, "calls": 0, "time_ms": 0.0, "flops": 0,
                                      "flops_source": set(), "bytes": 0})
        r["calls"] += 1
        r["time_ms"] += time_us / 1e3
        r["flops"] = None if flops is None or r["flops"] is None else r["flops"] + flops
        r["flops_source"] |= sources
        r["bytes"] = None if nbytes is None or r["bytes"] is None else r["bytes"] + nbytes
    records = sorted(by_name.values(), key=lambda r: -r["time_ms"])
    for r in records:
        r["flops_source"] = ("; ".join(sorted(r["flops_source"]))
                             if r["flops"] is not None else None)
    return records


def _cpu_items(events):
    for e in events:
        if _is_top_level_aten(e):
            flops, sources = _counted_flops(e)
            yield e.name, e.cpu_time_total, flops, sources, _op_bytes(e, e.cpu_memory_usage)


def _cuda_items(events):
    """One item per device kernel, FLOPs and bytes taken from the op that launched it.

    NOT RUN on the machine this was written on (no GPU): kept small on purpose. A kernel
    is linked to its launching op by the profiler's correlation id (the link torch's own
    ``FunctionEvent.kernels`` uses). Only an op that launched exactly one kernel lends it
    its FLOPs and bytes; an op that launched several cannot say how they split, so those
    kernels keep their time but have no FLOPs or bytes.
    """
    # CPU ops are the events not linked to anything (runtime calls like cudaLaunchKernel are
    # linked too, and their ids live in another numbering), as in torch's own association.
    ops = {e.id: e for e in events
           if e.device_type == torch.autograd.DeviceType.CPU and e.linked_correlation_id == 0}
    kernels = [e for e in events if _is_device_kernel(e)]
    launched = defaultdict(int)
    for k in kernels:
        launched[k.linked_correlation_id] += 1
    for k in kernels:
        op = ops.get(k.linked_correlation_id)
        flops, sources, nbytes = None, set(), None
        if op is not None and launched[k.linked_correlation_id] == 1:
            flops, sources = _counted_flops(op, nested=False)
            nbytes = _op_bytes(op, op.device_memory_usage)
        yield k.name, k.time_range.elapsed_us(), flops, sources, nbytes


def profile_kernels(step: Callable[[], object], device: torch.device) -> tuple[list[dict], float]:
    """Profile one call of ``step`` (already warmed up); return (records, wall ms of that step).

    Records: ``{"name", "calls", "time_ms", "flops", "flops_source", "bytes"}`` per op/kernel
    name, slowest first (see the module docstring for what each field is).
    """
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    synchronize(device)
    with profile(activities=activities, record_shapes=True, with_flops=True,
                 profile_memory=True) as prof:
        start = time.perf_counter()
        step()
        synchronize(device)
        wall_ms = (time.perf_counter() - start) * 1e3
    events = prof.events()
    items = _cuda_items(events) if device.type == "cuda" else _cpu_items(events)
    return _aggregate(items), wall_ms


def is_placed(record: dict) -> bool:
    """Whether a record can sit on the roofline: counted FLOPs, modelled bytes, measured time."""
    return bool(record.get("flops")) and bool(record.get("bytes")) and record["time_ms"] > 0


def flop_per_byte(record: dict) -> float | None:
    return record["flops"] / record["bytes"] if is_placed(record) else None


def flops_per_s(record: dict) -> float | None:
    return record["flops"] / (record["time_ms"] / 1e3) if is_placed(record) else None


def unplaced_summary(records: list[dict]) -> tuple[int, float]:
    """(how many op names are not placed, their share of the records' total time)."""
    total = sum(r["time_ms"] for r in records)
    off = [r for r in records if not is_placed(r)]
    return len(off), (sum(r["time_ms"] for r in off) / total if total else 0.0)
