"""FLOPs per step, counted: DeepSpeed's FLOPS profiler and torch's FlopCounterMode.

DeepSpeed hooks the forward pass (modules and functionals), so its number is the
forward FLOPs of one step. ``torch.utils.flop_counter`` counts aten ops, backward
included, so it gives the whole training step. Both are per step: each counter is
started and stopped around exactly one call.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

from torch.utils.flop_counter import FlopCounterMode

from .steps import StepStatus

# Dense peak FLOP/s by (device-name fragment, compute dtype), from vendor datasheets.
# Used only as the denominator of MFU, and named in the report when used.
PEAK_FLOPS = {
    ("H200", "bf16"): (989.4e12, "NVIDIA H200 SXM dense BF16 tensor-core peak (datasheet)"),
    ("H100", "bf16"): (989.4e12, "NVIDIA H100 SXM dense BF16 tensor-core peak (datasheet)"),
    ("A100", "bf16"): (312e12, "NVIDIA A100 dense BF16 tensor-core peak (datasheet)"),
    ("MI300X", "bf16"): (1307.4e12, "AMD MI300X dense BF16 peak (datasheet)"),
    ("MI250X", "bf16"): (383e12, "AMD MI250X dense BF16 peak (datasheet)"),
}


def known_peak(device_name: str, dtype_label: str) -> tuple[float, str] | None:
    dtype = dtype_label.split()[0]
    for (fragment, peak_dtype), value in PEAK_FLOPS.items():
        if fragment in device_name and peak_dtype == dtype:
            return value
    return None


def count_flops_torch(step) -> int:
    """FLOPs of one call of ``step`` (forward and backward), counted by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return int(counter.get_total_flops())


def run_deepspeed(model, step, out: Path) -> tuple[StepStatus, int | None]:
    """DeepSpeed FLOPS profile of one step; writes its per-module report to ``out``."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from deepspeed.profiling.flops_profiler import FlopsProfiler
    except Exception as exc:   # ImportError, or deepspeed failing to initialise
        return StepStatus("DeepSpeed FLOPS profiler", "skipped",
                          f"deepspeed not importable ({type(exc).__name__}); "
                          "install the 'profile' extra"), None
    target = getattr(model, "_orig_mod", model)
    prof = FlopsProfiler(target)
    prof.start_profile()
    try:
        step()
        flops = int(prof.get_total_flops())
        report = out / "deepspeed_flops.txt"
        prof.print_model_profile(profile_step=1, output_file=str(report))
    finally:
        prof.end_profile()
    return StepStatus("DeepSpeed FLOPS profiler", "ok", "forward FLOPs of one step",
                      [f"{out.name}/{report.name}"]), flops


def flops_report(model, step, out: Path, device_name: str, dtype_label: str
                 ) -> tuple[list[StepStatus], dict]:
    """Count this version's FLOPs of one step both ways, and name the MFU peak (if known).

    No rate here: achieved FLOP/s needs a time, and times come from the side-by-side
    harness (``benchmarks.profiling.summary`` cites them with v1's workload FLOPs)."""
    ds_status, ds_flops = run_deepspeed(model, step, out)
    step_flops = count_flops_torch(step)
    peak = known_peak(device_name, dtype_label)
    facts = {"deepspeed_forward_flops": ds_flops, "step_flops": step_flops,
             "peak": (f"{peak[0] / 1e12:.1f} TFLOP/s: {peak[1]}" if peak else
                      f"none: no known peak for {device_name} at {dtype_label}; "
                      "MFU not reported")}
    return [ds_status, StepStatus("FLOP counter (torch.utils.flop_counter)", "ok",
                                  "forward + backward FLOPs of one step")], facts
