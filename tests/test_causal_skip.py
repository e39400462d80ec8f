"""Causal tile skipping in compiler.block_program: attention runs per query group over only the
key blocks the group can see. Golden model only (fast, default suite).

Reference: the one-group program (``per_group`` >= the key-block rows of the step), which is
the unskipped program (every query row against all ceil((past+S)/N) key blocks, the masked
columns zeroed by SMAX). Both run from the same device state; y and the KV cache must be equal
bit for bit; the finest grouping must do fewer MACs once S > N, and the grouping the compiler
chooses must cost no more cycles (cycle model) than either the finest or the unskipped one.
The float reference (version 1's block) bounds the grouped result as tests/test_rtl_block.py
does.
"""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.calibrate import float_trace, quantize_block
from hw_offload.compiler import block_program, from_blocks, query_groups, to_blocks
from hw_offload.cycle_model import run_cycles
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import OP_GEMM, OP_HALT, HwConfig, Insn, encode_program
from hw_offload.model_session import ModelSession
from hw_offload.quant import quantize
from hw_offload.sram_plan import SramFitError
from hw_offload.testing import POISON, make_block
from version1_baseline.config import TinyLlamaConfig

N = 16
ONE_GROUP = 1 << 20
MIN_COSINE, MAX_REL = 0.99, 0.1     # against the float block; measured values are printed (-s)
# head_dim 32 > N (two blocks per head, scores accumulated over them) with GQA, and head_dim
# 8 < N (one padded block per head)
CONFIGS = {
    "hd32_gqa": TinyLlamaConfig(vocab_size=64, hidden_size=64, num_layers=1, num_heads=2,
                                num_kv_heads=1, intermediate_size=64, max_seq_len=48, batch_size=1),
    "hd8": TinyLlamaConfig(vocab_size=64, hidden_size=32, num_layers=1, num_heads=4,
                           num_kv_heads=2, intermediate_size=48, max_seq_len=48, batch_size=1),
}
# (new tokens S, past): 1, N-1, N+1, 2N+3 tokens, from 0 and from positions off a block boundary
STEPS = [(1, 0), (N - 1, 0), (N + 1, 0), (2 * N + 3, 0), (N - 1, 5), (N + 1, 7), (2 * N + 3, 9),
         (1, 37), (2 * N, 16)]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def block(request):
    cfg = CONFIGS[request.param]
    layer, cos, sin, calib, x = make_block(cfg, seed=0)
    return cfg, layer, cos, sin, quantize_block(layer, cfg, calib, cos, sin), x


def test_query_groups_cut_at_key_block_boundaries():
    # rows 0..10 are positions 5..15 (key block 0 only), then 16 rows per key block
    assert [(g.r0, g.r1, g.nkb) for g in query_groups(40, 5, N, 1)] == \
        [(0, 11, 1), (11, 27, 2), (27, 40, 3)]
    assert [(g.r0, g.r1, g.nkb) for g in query_groups(40, 5, N, 2)] == [(0, 27, 2), (27, 40, 3)]
    assert [(g.r0, g.r1, g.nkb) for g in query_groups(40, 5, N, ONE_GROUP)] == [(0, 40, 3)]
    assert [(g.r0, g.r1, g.nkb) for g in query_groups(1, 37, N, 1)] == [(0, 1, 3)]
    assert [(g.r0, g.r1, g.nkb) for g in query_groups(32, 16, N, 1)] == [(0, 16, 2), (16, 32, 3)]
    with pytest.raises(ValueError, match="per_group >= 1"):
        query_groups(4, 0, N, 0)


def _session(qb, cfg, hw=None):
    return ModelSession([qb], cfg.max_seq_len, 1, device=GoldenAccelerator(hw), weights="resident",
                        progress=False)


def _run_from(dev, state, program, session, x_q):
    """Restore the activation SRAM to ``state``, run ``program`` on x_q (int8 (S, hidden))
    -> (y int8 (S, hidden), the A SRAM afterwards). y is poisoned first."""
    plan = session.plan
    dev.asram[:] = state
    dev.write_mem(plan.x_dram, to_blocks(x_q, N).reshape(-1))
    dev.write_mem(plan.y_dram, np.full(x_q.size, POISON, dtype=np.uint8))
    dev.write_program(encode_program(program + [Insn(OP_HALT)]))
    dev.run()
    y = dev.read_mem(plan.y_dram, x_q.size).view(np.int8)
    return from_blocks(y, x_q.shape[0], x_q.shape[1] // N, N), dev.asram.copy()


def _macs(program):
    return sum(i.rows * i.blocks * i.aux for i in program if i.op == OP_GEMM) * N * N


@pytest.mark.parametrize("s,past", STEPS)
def test_skipped_tiles_equal_the_unskipped_program(block, s, past):
    cfg, layer, cos, sin, qb, x = block
    session = _session(qb, cfg)
    dev, plan = session.device, session.plan
    x_q = quantize(x[:past + s], qb.act_scales["x"])
    if past:                                # a real KV cache for positions 0..past-1
        session.run_block(0, x_q[None, :past], 0)
    # stale rows of the cache after the step's last position must not matter either
    kv = plan.kv[(0, 0)]
    for j in range(plan.kv_rows_per_block // (2 * kv.cap)):      # kv heads x blocks per head
        for base in (kv.k_base, kv.v_base):
            dev.asram[base + j * kv.cap + past + s:base + (j + 1) * kv.cap] = 77
    state = dev.asram.copy()
    args = (qb, session.layouts[0], session.rescales[0], session.hw, kv, s, past,
            plan.scratch_a, plan.x_dram, plan.y_dram)
    # finest: one key-block row of queries per group, so every fully masked tile is skipped;
    # chosen: the grouping the cycle model picks (with a fast vector unit the fill/drain of
    # more, smaller GEMMs can outweigh the skipped tiles, and it may pick one group)
    finest, unskipped = block_program(*args, per_group=1), block_program(*args, per_group=ONE_GROUP)
    chosen = block_program(*args)
    y_skip, a_skip = _run_from(dev, state, finest, session, x_q[past:])
    y_full, a_full = _run_from(dev, state, unskipped, session, x_q[past:])
    assert (y_skip.view(np.uint8) != POISON).any()
    np.testing.assert_array_equal(y_skip, y_full)
    np.testing.assert_array_equal(a_skip[:plan.scratch_a], a_full[:plan.scratch_a])   # KV caches
    np.testing.assert_array_equal(_run_from(dev, state, chosen, session, x_q[past:])[0], y_full)

    # the session's own step (it chooses the grouping) from the same cache gives the same bits
    y = session.run_block(0, x_q[None, past:], past)[0]
    np.testing.assert_array_equal(y, y_skip)
    # and it tracks version 1's float block over positions 0..past+s-1
    y_float = float_trace(layer, x[:past + s], cos[:past + s], sin[:past + s]).y[past:]
    y_hw = y.astype(np.float64) * qb.act_scales["y"]
    cos_sim = float((y_hw * y_float).sum() / (np.linalg.norm(y_hw) * np.linalg.norm(y_float)))
    rel = float(np.linalg.norm(y_hw - y_float) / np.linalg.norm(y_float))
    print(f"S={s} past={past}: cosine {cos_sim:.5f} rel.err {rel:.4f}")
    assert cos_sim >= MIN_COSINE and rel <= MAX_REL, (cos_sim, rel)

    hw = session.hw
    def cycles(program):
        return run_cycles(program + [Insn(OP_HALT)], hw)
    c_skip, c_full = cycles(finest), cycles(unskipped)
    assert cycles(chosen).cycles <= min(c_skip.cycles, c_full.cycles)   # the chooser never loses
    if s > N:   # at least two query groups, so masked tiles exist and are skipped
        assert _macs(finest) < _macs(unskipped)
    if s == 1:  # decode: the one-group program
        assert finest == chosen == unskipped


def test_groups_shrink_to_fit_a_small_instruction_memory(block, monkeypatch):
    """A shallow IMEM gets fewer, larger groups (same bits); one that holds no grouping refuses."""
    import hw_offload.compiler as compiler
    cfg, _, _, _, qb, x = block
    s = 2 * N + 3
    x_q = quantize(x[:s], qb.act_scales["x"])
    session = _session(qb, cfg)
    plan = session.plan
    args = (qb, session.layouts[0], session.rescales[0], session.hw, plan.kv[(0, 0)], s, 0,
            plan.scratch_a, plan.x_dram, plan.y_dram)
    # the finest grouping is the longest program; the chooser, given room, may pick any
    free = block_program(*args, per_group=1)
    with monkeypatch.context() as mp:   # the shortest program: also the GEMMs after attention uncut
        mp.setattr(compiler, "POST_PARTS", (1,))
        one = block_program(*args, per_group=ONE_GROUP)
    assert len(free) > len(one)
    depth = len(one) + 1                   # room for the one-group program and its HALT only
    shallow = HwConfig(imem_depth=depth)
    fitted = block_program(*args[:3], shallow, *args[4:])
    assert fitted == one
    state = session.device.asram.copy()
    np.testing.assert_array_equal(_run_from(session.device, state, free, session, x_q)[0],
                                  _run_from(session.device, state, one, session, x_q)[0])
    with pytest.raises(SramFitError, match=f"needs {depth} instructions .* holds {depth - 1}"):
        block_program(*args[:3], HwConfig(imem_depth=depth - 1), *args[4:])
    with pytest.raises(SramFitError, match="larger per_group than 1"):
        block_program(*args[:3], shallow, *args[4:], per_group=1)


def test_batched_step_equals_one_run_per_sequence(block):
    """block_program with B cache regions and start positions (x and y stacked by sequence)
    gives the same y and caches as B programs of one sequence, from the same state."""
    cfg, _, _, _, qb, _ = block
    batch, s, pasts = 3, 3, [0, 5, 17]
    session = ModelSession([qb], cfg.max_seq_len, batch, device=GoldenAccelerator(),
                           weights="resident", progress=False)
    dev, plan = session.device, session.plan
    rng = np.random.default_rng(1)
    dev.asram[:plan.scratch_a] = rng.integers(-128, 128, (plan.scratch_a, N), dtype=np.int8)
    state = dev.asram.copy()
    x_q = rng.integers(-128, 128, (batch * s, qb.hidden), dtype=np.int8)
    regions = [plan.kv[(0, b)] for b in range(batch)]
    common = (plan.scratch_a, plan.x_dram, plan.y_dram)
    batched = block_program(qb, session.layouts[0], session.rescales[0], session.hw, regions, s,
                            pasts, *common)
    y_b, a_b = _run_from(dev, state, batched, session, x_q)
    a_one = state
    for b in range(batch):
        one = block_program(qb, session.layouts[0], session.rescales[0], session.hw, regions[b], s,
                            pasts[b], *common)
        y_one, a_one = _run_from(dev, a_one, one, session, x_q[b * s:(b + 1) * s])
        np.testing.assert_array_equal(y_b[b * s:(b + 1) * s], y_one)
    np.testing.assert_array_equal(a_b[:plan.scratch_a], a_one[:plan.scratch_a])
    assert (a_b[:plan.scratch_a] != state[:plan.scratch_a]).any()     # the caches were written
    # fewer array cycles than three runs: each weight tile is loaded once for the batch
    hw = session.hw
    singles = sum(run_cycles(block_program(qb, session.layouts[0], session.rescales[0], hw,
                                           regions[b], s, pasts[b], *common) + [Insn(OP_HALT)],
                             hw).array_busy for b in range(batch))
    assert run_cycles(batched + [Insn(OP_HALT)], hw).array_busy < singles


def test_session_batches_the_sequences_of_a_step(block):
    """ModelSession.run_block runs a batch's step as one device run when it fits, bit-equal to
    sessions of one sequence each."""
    cfg, _, _, _, qb, _ = block
    rng = np.random.default_rng(2)
    x_q = rng.integers(-128, 128, (3, 7, qb.hidden), dtype=np.int8)
    together = ModelSession([qb], cfg.max_seq_len, 3, device=GoldenAccelerator(), progress=False)
    y = np.concatenate([together.run_block(0, x_q[:, :5], 0), together.run_block(0, x_q[:, 5:6], 5),
                        together.run_block(0, x_q[:, 6:], 6)], axis=1)
    assert [(r.seq, r.tokens) for r in together.records if r.kind == "step"] == [(-1, 15), (-1, 3),
                                                                                 (-1, 3)]
    for b in range(3):
        alone = ModelSession([qb], cfg.max_seq_len, 1, device=GoldenAccelerator(), progress=False)
        want = np.concatenate([alone.run_block(0, x_q[b:b + 1, :5], 0),
                               alone.run_block(0, x_q[b:b + 1, 5:6], 5),
                               alone.run_block(0, x_q[b:b + 1, 6:], 6)], axis=1)
        np.testing.assert_array_equal(y[b:b + 1], want)


@pytest.mark.rtl
def test_rtl_runs_grouped_and_batched_steps_like_golden(block):
    """The Verilator RTL on a batch-2 prefill of 2N+3 tokens (query groups, one run per
    sequence) and two batched decode steps: the same bits as the golden model, and the
    counters add up."""
    from hw_offload.driver import Accelerator
    cfg, _, _, _, qb, _ = block
    x_q = np.random.default_rng(3).integers(-128, 128, (2, 2 * N + 5, qb.hidden), dtype=np.int8)
    steps = [(0, 2 * N + 3), (2 * N + 3, 1), (2 * N + 4, 1)]
    with Accelerator("test") as acc:
        outs, sessions = [], []
        for device in (acc, GoldenAccelerator(acc.config)):
            session = ModelSession([qb], cfg.max_seq_len, 2, device=device, progress=False)
            outs.append([session.run_block(0, x_q[:, p:p + k], p) for p, k in steps])
            # 2 x 35 prefill rows exceed a run's scratch (48 rows): one run per sequence
            assert [(r.seq, r.tokens) for r in session.records if r.kind == "step"] == \
                [(0, 2 * N + 3), (1, 2 * N + 3), (-1, 2), (-1, 2)]
            sessions.append(session)
        for r in sessions[0].records:
            c = r.counters
            assert c.cycles == c.cycles_from_units() > 0
    for got, want in zip(*outs):
        np.testing.assert_array_equal(got, want)


def test_a_batch_splits_into_runs_that_fit_the_instruction_memory(block):
    """With an IMEM too shallow for the whole batch's program, the session runs as many
    sequences together as fit (here 2 of 3, then 1), bit-equal to runs of one sequence."""
    cfg, _, _, _, qb, _ = block
    x_q = np.random.default_rng(4).integers(-128, 128, (3, 4, qb.hidden), dtype=np.int8)
    session = ModelSession([qb], cfg.max_seq_len, 3, device=GoldenAccelerator(), progress=False)
    plan, hw = session.plan, session.hw
    sizes = {k: len(block_program(qb, session.layouts[0], session.rescales[0], hw,
                                  [plan.kv[(0, b)] for b in range(k)], 1, [3] * k,
                                  plan.scratch_a, plan.x_dram, plan.y_dram)) + 1 for k in (2, 3)}
    shallow = ModelSession([qb], cfg.max_seq_len, 3, device=GoldenAccelerator(
        HwConfig(imem_depth=1 << (sizes[2] - 1).bit_length())), progress=False)
    assert sizes[3] > shallow.hw.imem_depth >= sizes[2]
    got = [shallow.run_block(0, x_q[:, :3], 0), shallow.run_block(0, x_q[:, 3:], 3)]
    want = [session.run_block(0, x_q[:, :3], 0), session.run_block(0, x_q[:, 3:], 3)]
    assert [r.seq for r in session.records] == [-1, -1]
    assert [r.seq for r in shallow.records] == [-1, 2, -1, 2]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
