"""torch.profiler over a few steps: Chrome trace, TensorBoard trace, operator tables, memory.

The model's ``record_function`` ranges appear as named blocks in both traces:
``attention`` and ``mlp`` (each with its block's RMSNorm, which versions 3 and 4 fuse into
the projection, so it has no range of its own) and ``final_norm`` (after the last layer).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from ..environment import synchronize
from .steps import StepStatus

_TABLE_ROWS = 30
# The record_function ranges the models emit (version1_baseline/model.py and the versions
# that override its layer forward).
BLOCK_RANGES = ("attention", "mlp", "final_norm")


def run_torch_profiler(step, device: torch.device, out: Path, active_steps: int = 3
                       ) -> tuple[list[StepStatus], dict[str, float]]:
    """Profile ``active_steps`` calls of ``step`` (after 1 wait + 1 warm-up step).

    Returns the step statuses and the CPU milliseconds per step spent in each named
    trace range (BLOCK_RANGES), as the profiler measured them.
    """
    out.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    tb_dir = out / "tensorboard"
    sched = schedule(wait=1, warmup=1, active=active_steps, repeat=1)
    with profile(activities=activities, schedule=sched, record_shapes=True,
                 on_trace_ready=tensorboard_trace_handler(str(tb_dir))) as prof:
        for _ in range(2 + active_steps):
            step()
            synchronize(device)
            prof.step()
    statuses = [StepStatus("tensorboard trace", "ok", f"{tb_dir.name}/",
                           [str(p.relative_to(out.parent)) for p in tb_dir.iterdir()])]

    averages = prof.key_averages()
    blocks = {e.key: e.cpu_time_total / 1e3 / active_steps for e in averages
              if e.key in BLOCK_RANGES}
    tables = {"ops_by_cpu_time.txt": "self_cpu_time_total"}
    if device.type == "cuda":
        tables["ops_by_device_time.txt"] = "self_device_time_total"
    for filename, key in tables.items():
        (out / filename).write_text(averages.table(sort_by=key, row_limit=_TABLE_ROWS))
    statuses.append(StepStatus("operator tables", "ok", ", ".join(tables),
                               [f"{out.name}/{f}" for f in tables]))
    if device.type != "cuda":
        statuses.append(StepStatus("operator table by device time", "skipped",
                                   "CPU run: there is no device time"))

    # A separate, single-step run for the Chrome trace with memory: the scheduled run's
    # trace already went to the TensorBoard handler.
    chrome = out / "trace.json"
    with profile(activities=activities, profile_memory=True, record_shapes=True,
                 with_stack=True) as prof1:
        step()
        synchronize(device)
    prof1.export_chrome_trace(str(chrome))
    statuses.append(StepStatus("chrome trace", "ok", "open in https://ui.perfetto.dev",
                               [f"{out.name}/trace.json"]))
    try:
        timeline = out / "memory_timeline.html"
        prof1.export_memory_timeline(str(timeline), device=str(device))
        statuses.append(StepStatus("memory timeline", "ok", "", [f"{out.name}/{timeline.name}"]))
    except Exception as exc:   # the exporter is a young API; say what broke, keep going
        statuses.append(StepStatus("memory timeline", "failed", f"{type(exc).__name__}: {exc}"))
    return statuses, blocks
