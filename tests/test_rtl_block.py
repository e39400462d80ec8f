"""Whole decoder block: RTL == golden bit-exact, golden close to version 1's float block."""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.driver import Accelerator
from hw_offload.golden import GoldenAccelerator
from hw_offload.model_session import ModelSession
from hw_offload.calibrate import float_trace, quantize_block
from hw_offload.quant import quantize
from hw_offload.testing import POISON, make_block, run_one_block, seeds
from version1_baseline import get_preset

pytestmark = pytest.mark.rtl

# The default test runs fixed seeds (0, 1, 2; testing.seeds), so it passes or fails the same
# way every run; BOUNDS hold for those seeds with margin. The random-seed sweep below
# (`sweep` marker, HW_SWEEP=1) draws fresh seeds, prints them, and checks SWEEP_BOUNDS, the
# worst case of a measured sweep (see its docstring). hidden 16 is the hardest size: one int8
# step is a large share of each of 16 channels.
BOUNDS = {   # size: (min cosine, max relative error, min branch cosine)
    "chip16": (0.99, 0.15, 0.985),
    "h64_gqa": (0.998, 0.05, 0.995),
}

SIZES = {
    "chip16": get_preset("chip16"),
    "h64_gqa": get_preset("chip16").replace(hidden_size=64, num_heads=4, num_kv_heads=2,
                                            intermediate_size=128, max_seq_len=32),
}


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


def cosine(a, b):
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("seed", seeds(3))
@pytest.mark.parametrize("size", sorted(SIZES))
def test_block_rtl_equals_golden_and_tracks_float(rtl, size, seed, record_property):
    cfg = SIZES[size]
    layer, cos, sin, calib, x = make_block(cfg, seed)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])

    y_rtl, counters, _ = run_one_block(rtl, qb, x_q)
    y_gold, gold_counters, _ = run_one_block(GoldenAccelerator(rtl.config), qb, x_q)
    np.testing.assert_array_equal(y_rtl, y_gold)
    assert counters.bytes_in == gold_counters.bytes_in == x_q.size
    assert counters.bytes_out == gold_counters.bytes_out == x_q.size
    assert counters.cycles == counters.cycles_from_units()

    y_float = float_trace(layer, x, cos, sin).y
    y_hw = y_gold.astype(np.float64) * qb.act_scales["y"]
    cos_sim = cosine(y_hw, y_float)
    rel = float(np.linalg.norm(y_hw - y_float) / np.linalg.norm(y_float))
    branch = cosine(y_hw - x, y_float - x)   # the block's own contribution, without the skip
    record_property("cosine", cos_sim)
    record_property("relative_error", rel)
    record_property("branch_cosine", branch)
    print(f"{size} seed {seed}: cosine {cos_sim:.5f} rel.err {rel:.4f} branch cosine {branch:.5f} "
          f"cycles {counters.cycles}")
    min_cos, max_rel, min_branch = BOUNDS[size]
    assert cos_sim >= min_cos, f"cosine {cos_sim:.5f} < {min_cos}"
    assert rel <= max_rel, f"relative error {rel:.4f} > {max_rel}"
    assert branch >= min_branch, f"branch cosine {branch:.5f} < {min_branch}"


def _golden_accuracy(size: str, seed: int) -> tuple[float, float, float]:
    """(cosine, relative error, branch cosine) of the golden integer block vs v1's float block."""
    cfg = SIZES[size]
    layer, cos, sin, calib, x = make_block(cfg, seed)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    y_gold, _, _ = run_one_block(GoldenAccelerator(), qb, quantize(x, qb.act_scales["x"]))
    y_float = float_trace(layer, x, cos, sin).y
    y_hw = y_gold.astype(np.float64) * qb.act_scales["y"]
    rel = float(np.linalg.norm(y_hw - y_float) / np.linalg.norm(y_float))
    return cosine(y_hw, y_float), rel, cosine(y_hw - x, y_float - x)


# Bounds for fresh seeds, set outside the worst cases of earlier golden-model sweeps on this
# design: chip16 cosine 0.9868 (200 seeds, issue 18; 0.9934 over 300 in an earlier sweep),
# relative error 0.121, branch cosine 0.9885; h64_gqa cosine 0.9991, relative error 0.0528
# (seed 3374875), branch cosine 0.9979. Re-measure with
#   HW_SWEEP=1 HW_SWEEP_SEEDS=200 pytest tests/test_rtl_block.py -k sweep -s
# which prints the worst case and the seeds; one that breaks a bound is named in the failure.
SWEEP_BOUNDS = {"chip16": (0.985, 0.18, 0.975), "h64_gqa": (0.997, 0.07, 0.99)}


@pytest.mark.slow
@pytest.mark.sweep
@pytest.mark.parametrize("size", sorted(SIZES))
def test_block_accuracy_random_seed_sweep(size):
    import os
    count = int(os.environ.get("HW_SWEEP_SEEDS", "20"))
    start = int.from_bytes(os.urandom(3), "little")
    print(f"{size}: seeds {start}..{start + count - 1} (replay one: HW_TEST_SEED=<seed>)")
    res = {s: _golden_accuracy(size, s) for s in range(start, start + count)}
    worst = (min(r[0] for r in res.values()), max(r[1] for r in res.values()),
             min(r[2] for r in res.values()))
    print(f"{size}: worst cosine {worst[0]:.5f}, relative error {worst[1]:.4f}, "
          f"branch cosine {worst[2]:.5f} over {count} seeds")
    min_cos, max_rel, min_branch = SWEEP_BOUNDS[size]
    bad = {s: r for s, r in res.items() if r[0] < min_cos or r[1] > max_rel or r[2] < min_branch}
    assert not bad, f"seeds outside {SWEEP_BOUNDS[size]}: {bad}"


def test_weights_stay_resident_across_runs(rtl):
    """A second run with new x moves only x and y; the result still matches golden."""
    cfg = SIZES["chip16"]
    layer, cos, sin, calib, x = make_block(cfg, 3)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    _, _, rtl_sess = run_one_block(rtl, qb, x_q)
    gold_sess = ModelSession([qb], cfg.max_seq_len, 0, device=GoldenAccelerator(rtl.config))
    (load,) = rtl_sess.setup_records
    assert load.counters.bytes_in == rtl_sess.layouts[0].image.size
    for x_new in (x, -x):
        x_q = quantize(x_new, qb.act_scales["x"])
        rtl_sess.device.write_mem(rtl_sess.plan.y_dram, np.full(x_q.size, POISON, dtype=np.uint8))
        y_rtl = rtl_sess.run_block(0, x_q[None], 0, keep_kv=False)[0]
        c = rtl_sess.records[-1].counters
        np.testing.assert_array_equal(y_rtl, gold_sess.run_block(0, x_q[None], 0, keep_kv=False)[0])
        assert c.bytes_in == x_q.size
    assert all(r.kind == "step" for r in rtl_sess.records)   # no weight reload
