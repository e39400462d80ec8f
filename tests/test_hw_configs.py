"""Accelerator configurations (hw_offload.configs) flow through build, driver, golden model,
session, backend, cost and the rtl rows; bad ones are refused at the boundary."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import benchmarks.__main__ as bench_entry
from hw_offload import build as hwbuild
from hw_offload.backend import OffloadContext, RtlOptions
from hw_offload.calibrate import float_trace, quantize_block
from hw_offload.configs import NAMED, AccelConfig, UnknownConfigError, get_config, with_clock
from hw_offload.cost import HostLink
from hw_offload.device_counters import Counters, LinkCounters
from hw_offload.errors import ConfigMismatchError, SramFitError
from hw_offload.golden import GoldenAccelerator
from hw_offload.golden_cycles import CycleModelAccelerator
from hw_offload.model_session import CallRecord, ModelSession, make_device, plan_blocks
from hw_offload.quant import quantize
from hw_offload.testing import make_block, run_one_block
from version1_baseline import TinyLlama, get_preset

CHIP16 = get_preset("chip16")
# the smallest block shape every named configuration tiles (hidden, KV width and intermediate
# multiples of 32); head_dim 32
H64 = CHIP16.replace(hidden_size=64, num_heads=2, num_kv_heads=1, intermediate_size=64,
                     max_seq_len=16)
# the accuracy bounds of tests/test_rtl_block.py for the fixed seeds (chip16 is its size;
# h64's shape is easier than its h64_gqa, so the chip16 bounds are the conservative ones)
BOUNDS = (0.99, 0.15, 0.985)   # (min cosine, max relative error, min branch cosine)


def cosine(a, b):
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------- names, clocks, bad input ----------------
def test_unknown_name_lists_the_named_configurations():
    with pytest.raises(UnknownConfigError) as e:
        get_config("fpga64")
    assert str(e.value) == ("unknown accelerator configuration 'fpga64'; choose one of "
                            "['chip16', 'edge16', 'fpga32']")
    with pytest.raises(UnknownConfigError, match="fpga64"):
        RtlOptions(config="fpga64")
    with pytest.raises(TypeError, match="AccelConfig"):
        make_device("golden", 32)


def test_the_clock_has_one_source():
    assert with_clock(None, None) is NAMED["chip16"]
    assert with_clock("fpga32", None) is NAMED["fpga32"]
    assert with_clock(None, 333.0) == dataclasses.replace(NAMED["chip16"], clock_mhz=333.0)
    assert with_clock("edge16", NAMED["edge16"].clock_mhz) is NAMED["edge16"]   # agreeing: fine
    with pytest.raises(ValueError, match="conflicts with configuration 'fpga32'"):
        with_clock("fpga32", NAMED["fpga32"].clock_mhz + 50)
    with pytest.raises(ValueError, match="positive"):
        with_clock(None, 0)
    opts = RtlOptions(config="fpga32")
    assert opts.config is NAMED["fpga32"] and opts.clock_mhz == NAMED["fpga32"].clock_mhz
    assert RtlOptions(clock_mhz=100.0).config.clock_mhz == 100.0
    with pytest.raises(ValueError, match="conflicts"):
        RtlOptions(config="fpga32", clock_mhz=123.0)
    # dataclasses.replace (the backend's own copies) keeps the resolved pair consistent
    assert dataclasses.replace(opts, max_seq_len=8).config is NAMED["fpga32"]


def test_the_backend_prices_at_the_configurations_clock():
    rec = CallRecord("step", 0, 0, 0, 1, Counters(cycles=1_000_000), LinkCounters(0, 0, 0))
    slow = dataclasses.replace(NAMED["edge16"], name="edge16@100", clock_mhz=100.0)
    link = HostLink(latency_ns=0.0)
    t_slow = OffloadContext(RtlOptions(config=slow, link=link)).price([rec]).compute_s
    t_fast = OffloadContext(RtlOptions(config="edge16", link=link)).price([rec]).compute_s
    assert t_slow == pytest.approx(1e6 / 100e6)
    assert t_fast == pytest.approx(1e6 / (NAMED["edge16"].clock_mhz * 1e6))


def test_benchmarks_cli_refuses_an_unknown_hw_config_with_one_line(tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        bench_entry.main(["run", "--versions", "v1,rtl", "--presets", "chip16", "--hw-config",
                          "fpga64", "--out", str(out), "--no-progress", "--no-ceilings"])
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 2 and not out.exists()
    assert err == ["error: --hw-config: unknown accelerator configuration 'fpga64'; choose one "
                   "of ['chip16', 'edge16', 'fpga32']"]


# ---------------- builds ----------------
def test_default_build_keeps_its_cache_key_and_others_get_their_own():
    assert hwbuild.config_params(NAMED["chip16"]) == {}
    keys = {name: hwbuild.source_hash("test", hwbuild.config_params(c)) for name, c in NAMED.items()}
    assert keys["chip16"] == hwbuild.source_hash("test", {})
    assert len(set(keys.values())) == len(NAMED)
    assert hwbuild.config_params(NAMED["fpga32"])["N"] == 32


def test_lanes_reach_verilator_only_when_accel_top_has_the_parameter(monkeypatch):
    lanes8 = AccelConfig("lanes8", lanes=8)
    have = hwbuild.top_parameters()
    monkeypatch.setattr(hwbuild, "top_parameters", lambda: have - {"LANES"})
    assert "LANES" not in hwbuild.config_params(lanes8)
    monkeypatch.setattr(hwbuild, "top_parameters", lambda: have | {"LANES"})
    assert hwbuild.config_params(lanes8) == {"LANES": 8}


# ---------------- planning: what fits where ----------------
def _tiny_blocks():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    cos, sin = model.model.rotary_emb(torch.arange(cfg.max_seq_len))
    calib = torch.randn(1, cfg.max_seq_len, cfg.hidden_size).numpy()
    return cfg, [quantize_block(layer, cfg, calib, cos, sin) for layer in model.model.layers]


def test_tiny_plans_on_the_named_configurations():
    cfg, qbs = _tiny_blocks()
    # fpga32: tiny's batch-4 KV caches fit; its weights (with their RoPE and scale tables) need
    # more than the 65536 rows x 32 B = 2 MiB a 16-bit weight-row address reaches, so they stay
    # resident with some matrices moved to the activation SRAM (sram_plan.choose_spill), or stream
    plan, _, _ = plan_blocks(qbs, NAMED["fpga32"].hw(), cfg.max_seq_len, 4)
    assert plan.batch == 4 and plan.resident and plan.a_reserved > 0
    assert sum(plan.weight_rows) + plan.a_reserved > 65536 == NAMED["fpga32"].w_rows
    plan, _, _ = plan_blocks(qbs, NAMED["fpga32"].hw(), cfg.max_seq_len, 4, "stream")
    assert plan.batch == 4 and plan.chunk == cfg.max_seq_len
    assert not plan.resident and plan.weight_rows_needed > 65536 == NAMED["fpga32"].w_rows
    # edge16 streams (one block's image fits its 1 MiB weight SRAM), batch 1
    plan, _, _ = plan_blocks(qbs, NAMED["edge16"].hw(), cfg.max_seq_len, 1)
    assert not plan.resident and max(plan.weight_rows) <= NAMED["edge16"].w_rows
    with pytest.raises(SramFitError, match="largest batch that fits is 1"):
        plan_blocks(qbs, NAMED["edge16"].hw(), cfg.max_seq_len, 4)


def test_a_model_narrower_than_the_array_is_refused_naming_the_sizes():
    layer, cos, sin, calib, _ = make_block(CHIP16, 0)
    qb = quantize_block(layer, CHIP16, calib, cos, sin)
    with pytest.raises(SramFitError, match=r"block 0: hidden 16 "
                                           r"not a multiple of the 32x32 array"):
        ModelSession([qb], CHIP16.max_seq_len, 0, target="golden", config="fpga32")


# ---------------- golden runs of other configurations, against the float block ----------------
@pytest.mark.parametrize("name,shape", [("edge16", "chip16"), ("fpga32", "h64")])
def test_golden_block_on_a_named_configuration_tracks_float(name, shape):
    cfg = {"chip16": CHIP16, "h64": H64}[shape]
    layer, cos, sin, calib, x = make_block(cfg, 0)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    dev = make_device("cycle_model", name)
    assert dev.config == NAMED[name].hw()
    y, counters, session = run_one_block(dev, qb, quantize(x, qb.act_scales["x"]))
    assert session.accel_config is NAMED[name]
    # counted by the cycle model: every cycle is a stall or counted once among the busy units
    assert counters.cycles == counters.cycles_from_units() > 0
    y_float = float_trace(layer, x, cos, sin).y
    y_hw = y.astype(np.float64) * qb.act_scales["y"]
    rel = float(np.linalg.norm(y_hw - y_float) / np.linalg.norm(y_float))
    min_cos, max_rel, min_branch = BOUNDS
    assert cosine(y_hw, y_float) >= min_cos and rel <= max_rel
    assert cosine(y_hw - x, y_float - x) >= min_branch
    # the same bits as the plain golden model of that configuration
    y_plain, plain_counters, _ = run_one_block(GoldenAccelerator(name), qb,
                                               quantize(x, qb.act_scales["x"]))
    np.testing.assert_array_equal(y, y_plain)
    assert plain_counters.cycles is None


def test_a_device_of_another_configuration_is_refused():
    layer, cos, sin, calib, _ = make_block(CHIP16, 0)
    qb = quantize_block(layer, CHIP16, calib, cos, sin)
    with pytest.raises(ConfigMismatchError, match="'edge16' needs"):
        ModelSession([qb], 16, 0, device=GoldenAccelerator("chip16"), config="edge16")


# ---------------- one Verilator build of a non-default configuration ----------------
# N=8 with small memories: the cheapest build that changes every size parameter (about 30 s
# here, against minutes for a 16x16 or 32x32 build).
SMALL = AccelConfig("small8", n=8, lanes=8, a_rows=2048, w_rows=4096, acc_rows=2048,
                    dram_bytes=256 * 1024, imem_depth=1024, clock_mhz=250.0)


@pytest.mark.rtl
def test_verilator_build_of_a_small_configuration_matches_golden_and_the_cycle_model():
    from hw_offload.driver import Accelerator
    layer, cos, sin, calib, x = make_block(CHIP16, 1)
    qb = quantize_block(layer, CHIP16, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    with Accelerator("test", config=SMALL) as acc:
        assert acc.config == SMALL.hw() and acc.accel_config is SMALL
        y_rtl, c_rtl, _ = run_one_block(acc, qb, x_q)
        lib = acc._lib._name
    y_gold, c_gold, _ = run_one_block(CycleModelAccelerator(SMALL), qb, x_q)
    np.testing.assert_array_equal(y_rtl, y_gold)
    assert c_rtl.to_dict() == c_gold.to_dict()
    # the driver checks the build it opened against the configuration asked for
    with pytest.raises(ConfigMismatchError, match=r"configuration 'chip16' needs"):
        Accelerator("test", lib_path=lib, config="chip16")


@pytest.mark.slow
@pytest.mark.rtl
def test_fpga32_verilator_build_matches_golden_and_the_cycle_model():
    """The 32x32 build (about 10 minutes to build on the loaded 2-core machine, hence slow; the
    fast variant, the one the comparison uses) against the cycle model on an h64 block."""
    from hw_offload.driver import Accelerator
    layer, cos, sin, calib, x = make_block(H64, 2)
    qb = quantize_block(layer, H64, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    with Accelerator("fast", config="fpga32") as acc:
        y_rtl, c_rtl, _ = run_one_block(acc, qb, x_q)
    y_gold, c_gold, _ = run_one_block(CycleModelAccelerator("fpga32"), qb, x_q)
    np.testing.assert_array_equal(y_rtl, y_gold)
    assert c_rtl.to_dict() == c_gold.to_dict()


# ---------------- the comparison: python -m benchmarks.hw --configs ----------------
def test_configuration_comparison_reports_estimates_beside_v1_measured(tmp_path, capsys):
    from benchmarks.hw import cycle_breakdown as cb
    from benchmarks.hw.bench_block import main
    out = tmp_path / "cmp"
    main(["--configs", "chip16,fpga32", "--cycle-model", "chip16,fpga32", "--presets", "chip16",
          "--repeats", "2", "--out", str(out)])
    import json
    res = json.loads((out / "configs_bench.json").read_text())
    md = (out / "configs_bench.md").read_text()
    assert (out / "configs_cycles.png").stat().st_size > 0
    assert [(s["mode"], s["batch"]) for s in res["steps"]] == [("prefill", 1), ("decode", 1)]
    for s in res["steps"]:
        e, v1 = s["configs"]["chip16"], s["v1_measured_ms"]["median"]
        c = e["cycles"]
        assert e["status"] == "estimated" and e["target"] == "cycle_model"
        # the cycle model reports overlap: the split by busy units adds up (check() raises if not)
        assert cb.check(c)["overlap"] is not None
        assert sum(c["by_busy_units"].values()) == c["cycles"]
        assert c["utilization"]["array_busy"] == pytest.approx(c["array_busy"] / c["cycles"])
        # priced at chip16's clock, link added, speedup against the v1 median of this run
        assert e["compute_ms"] == pytest.approx(c["cycles"] / (NAMED["chip16"].clock_mhz * 1e3))
        assert e["total_ms"] == pytest.approx(e["compute_ms"] + e["link_ms"])
        assert e["speedup_vs_v1"] == pytest.approx(v1 / e["total_ms"])
        assert 0 < e["pe_utilization"] < 1 and 0 < e["host_link_share"] < 1
        # chip16's 16-wide model does not tile the 32x32 array: a reason, no number
        assert s["configs"]["fpga32"]["status"] == "n/a"
        assert "not a multiple of the 32x32 array" in s["configs"]["fpga32"]["detail"]
    assert "ESTIMATED" in md and "MEASURED" in md and "load average" in md
    with pytest.raises(SystemExit) as e:
        main(["--configs", "chip16,fpga64", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and not (tmp_path / "bad").exists()
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        "error: unknown accelerator configuration 'fpga64'")


def test_rtl_rows_run_on_the_configuration_asked_for(monkeypatch):
    from benchmarks import compare
    from benchmarks.rtl_estimate import estimate_rows
    torch.manual_seed(0)
    state = TinyLlama(CHIP16).state_dict()
    slow = dataclasses.replace(NAMED["edge16"], name="edge16@50", clock_mhz=50.0)
    (row,) = estimate_rows("chip16", ["prefill"], state, 1, 16, config=slow, target="cycle_model")
    assert row["status"] == "ok" and row["config"] == "edge16@50" and row["clock_mhz"] == 50.0
    assert "estimated at 50 MHz" in row["detail"] and "configuration edge16@50" in row["detail"]
    cycles = row["compute_ms"] * 1e-3 * 50e6
    assert cycles == pytest.approx(round(cycles)) and cycles > 0
    with pytest.raises(UnknownConfigError):
        estimate_rows("chip16", ["prefill"], state, 1, 16, config="edge32")
    # the harness hands its --hw-config to the rtl rows
    seen = {}
    monkeypatch.setattr("benchmarks.rtl_estimate.estimate_rows",
                        lambda *a, **k: seen.update(k) or [dict(row, mode="prefill")])
    (r,) = compare.rtl_rows("chip16", ["prefill"], state, 1, 16, "fpga32")
    assert seen["config"] == "fpga32" and r.extra["hw_config"] == "edge16@50"
