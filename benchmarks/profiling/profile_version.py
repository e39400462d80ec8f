"""Profile one version on one preset and mode: timing JSON, torch profiler, FLOPs, vendor tools."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from version1_baseline.config import get_preset

from ..cli import parse_options
from ..runner import run_workload
from ..versions import build_model, describe_run, load_spec
from ..workloads import make_workload, resolve_dtype
from .flops import flops_report
from .steps import StepStatus
from .torch_profile import run_torch_profiler
from .vendor import run_vendor_tools


def profile_version(name: str, preset: str, mode: str, device: torch.device, out: Path,
                    steps: int = 10, warmup: int = 3, dtype_name: str = "auto",
                    version_args: list[str] | None = None, vendor: bool = True,
                    allow_interpreter: bool = False) -> dict:
    """Run every profiler on ``name``; write files under ``out/<name>/``; return a summary dict.

    version_args: the version's own flags (e.g. ``["--fusions", "qkv"]``), which also go
    to the vendor profilers' ``python -m <version>`` command. Raises ``benchmarks.versions.Unavailable`` when the version cannot run here.
    """
    spec = load_spec(name, device, allow_interpreter=allow_interpreter)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    options = parse_options(spec, version_args or [])
    dtype = resolve_dtype(dtype_name, device)
    config = get_preset(preset)
    torch.manual_seed(0)
    model = build_model(spec, config, None, device, options, dtype)
    batch, seq = config.batch_size, config.max_seq_len

    result = run_workload(model, version=spec.name, preset=preset, mode=mode, batch_size=batch,
                          seq_len=seq, device=device, dtype=dtype, steps=steps, warmup=warmup,
                          describe=lambda m: describe_run(spec, m, mode=mode, batch_size=batch,
                                                          seq_len=seq, device=device,
                                                          dtype=dtype),
                          loss_fn=spec.loss_fn)
    result.write(folder / "result.json")
    statuses = [StepStatus("timing", "ok", f"{steps} steps after {warmup} warm-up",
                           [f"{name}/result.json"])]

    # Profilers run on a fresh workload so that they never disturb the timed one.
    work = make_workload(model, mode, batch, seq, device, dtype, loss_fn=spec.loss_fn)
    work.step()
    torch_statuses, block_ms = run_torch_profiler(work.step, device, folder)
    statuses += torch_statuses
    flop_statuses, flops = flops_report(model, work.step, folder, result.machine["device_name"],
                                        result.dtype)
    statuses += flop_statuses
    if vendor:
        module = spec.model_cls.__module__.split(".")[0] if spec.name != "compile" else None
        if module is None:
            statuses.append(StepStatus("vendor profilers", "skipped",
                                       "the compile peer has no CLI module of its own"))
        else:
            program = ["-m", module, "--preset", preset, "--mode", mode, "--device", str(device),
                       "--dtype", dtype_name, *(version_args or []), "--steps", "3",
                       "--warmup", "2", "--no-count"]
            statuses += run_vendor_tools(program, folder)
    summary = {"version": spec.name, "preset": preset, "mode": mode,
               "result": result.to_json(), "flops": flops, "block_ms": block_ms,
               "steps": [s.__dict__ for s in statuses]}
    (folder / "profile_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
