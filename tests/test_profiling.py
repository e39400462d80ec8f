"""The shared profiling entry point leaves a trace, a FLOPs report and a measured summary."""
import json

import pytest

from benchmarks.profiling.__main__ import main as profile_main
from benchmarks.profiling.flops import count_flops_torch, known_peak
from version1_baseline import TinyLlama, get_preset


def test_profiling_run_writes_trace_flops_and_summary(tmp_path):
    rc = profile_main(["--versions", "v1,v3", "--preset", "chip16", "--mode", "train",
                       "--steps", "2", "--warmup", "1", "--device", "cpu", "--out", str(tmp_path)])
    assert rc == 0
    v1 = tmp_path / "v1"
    trace = json.loads((v1 / "trace.json").read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"attention", "mlp", "final_norm"} <= names, "record_function block ranges are missing"
    assert any((v1 / "tensorboard").iterdir())
    assert "Name" in (v1 / "ops_by_cpu_time.txt").read_text()

    summary = json.loads((v1 / "profile_summary.json").read_text())
    steps = {s["name"]: s for s in summary["steps"]}
    # Vendor tools are absent here: skipped with a reason, never reported as having run.
    assert steps["nsys"]["status"] == "skipped" and steps["nsys"]["detail"]
    try:
        import deepspeed  # noqa: F401
        has_deepspeed = True
    except Exception:
        has_deepspeed = False
    ds = steps["DeepSpeed FLOPS profiler"]
    if has_deepspeed:
        assert ds["status"] == "ok" and summary["flops"]["deepspeed_forward_flops"] > 0
        assert (v1 / "deepspeed_flops.txt").stat().st_size > 0
    else:
        assert ds["status"] == "skipped" and "deepspeed" in ds["detail"]

    md = (tmp_path / "summary.md").read_text()
    # Speed is the side-by-side harness's (tests/test_profile_summary.py); without one the
    # summary has no time column, never the profiler's own separately timed median.
    assert "No speed column" in md and "median ms" not in md
    assert f"{summary['flops']['step_flops'] / 1e9:.2f}" in md, "the counted FLOPs are shown"
    assert "nsys: skipped" in md and "PASS" not in md
    assert "v3: not run: v3: no GPU" in md   # a Triton version on CPU says why it did not run


def test_step_flops_match_the_analytic_count():
    """FlopCounterMode on a forward pass equals 2 * (matmul MACs) computed by hand."""
    cfg = get_preset("chip16")
    model = TinyLlama(cfg)
    import torch
    b, s = 2, 16
    ids = torch.randint(0, cfg.vocab_size, (b, s))
    flops = count_flops_torch(lambda: model(ids))
    h, i, v, kv = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.num_kv_heads * cfg.head_dim
    linear = b * s * (h * h * 2 + h * kv * 2 + 3 * h * i) * cfg.num_layers + b * s * h * v
    attention = 2 * b * cfg.num_heads * s * s * cfg.head_dim * cfg.num_layers
    assert flops == 2 * (linear + attention)


def test_mfu_peak_is_named_only_for_known_devices():
    assert known_peak("NVIDIA H200", "bf16 (autocast)")[0] == pytest.approx(989.4e12)
    assert known_peak("CPU: AMD EPYC (2 cores)", "fp32") is None
