"""Programs written for the overlapping controller: streamed weights loaded by the step's own
program (compiler.stream_weight_loads), GEMMs after attention cut into column ranges, and what
the controller makes of them (cycle_model.run_cycles).

References: the same steps with the weights resident (the unchanged path: the image loaded
once, before any step) for the bits; the weight SRAM poisoned before every streamed call, so a
GEMM or vector op placed before the LOAD of what it reads computes with poison; the program's
own footprints for the order; the cycle model's sequential sum for the schedule.
"""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.calibrate import quantize_block
from hw_offload.compiler import block_program, rescales, weight_load_program, weight_segments
from hw_offload.cycle_model import insn_cycles, run_cycles
from hw_offload.footprint import footprint
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import MEM_W, OP_HALT, OP_LOAD, Insn, encode_program
from hw_offload.model_session import ModelSession, plan_blocks
from hw_offload.quant import quantize
from hw_offload.testing import POISON, make_block
from version1_baseline import get_preset

# head_dim 32 on a 16-lane array (two blocks per head), 2 query heads sharing 1 kv head
SMALL = get_preset("chip16").replace(hidden_size=64, num_heads=2, num_kv_heads=1,
                                     intermediate_size=96, max_seq_len=32)
PROMPT, DECODE = 13, 3
HALT = Insn(OP_HALT)


@pytest.fixture(scope="module")
def small_block():
    layer, cos, sin, calib, x = make_block(SMALL, 5)
    qb = quantize_block(layer, SMALL, calib, cos, sin)
    rng = np.random.default_rng(5)
    x_q = quantize(rng.standard_normal((1, PROMPT + DECODE, SMALL.hidden_size)), qb.act_scales["x"])
    return qb, x_q


def poison_weight_sram(session: ModelSession, block: int) -> None:
    """Fill the rows of ``block``'s weight image with POISON through the device's own DMA."""
    wl, dev = session.layouts[block], session.device
    dev.write_mem(0, np.full(wl.dram_image().size, POISON, dtype=np.uint8))
    dev.write_program(encode_program(weight_load_program(wl, 0, session.hw.n) + [HALT]))
    dev.run()


def _steps(session: ModelSession, x_q: np.ndarray, poison: bool) -> list[np.ndarray]:
    """Prefill PROMPT tokens, then DECODE single-token steps; the weight SRAM poisoned first."""
    out = []
    for past, length in [(0, PROMPT)] + [(t, 1) for t in range(PROMPT, PROMPT + DECODE)]:
        if poison:
            poison_weight_sram(session, 0)
        out.append(session.run_block(0, x_q[:, past:past + length], past))
    return out


def _streamed_equals_resident(make_device, small_block):
    qb, x_q = small_block
    streamed = ModelSession([qb], SMALL.max_seq_len, 1, device=make_device(), weights="stream",
                            progress=False)
    resident = ModelSession([qb], SMALL.max_seq_len, 1, device=GoldenAccelerator(),
                            weights="resident", progress=False)
    got, want = _steps(streamed, x_q, poison=True), _steps(resident, x_q, poison=False)
    for y, y_ref in zip(got, want):
        np.testing.assert_array_equal(y, y_ref)
    # one run per call, each loading the image itself (no separate weight-load run)
    assert [r.kind for r in streamed.records] == ["step"] * (1 + DECODE)
    assert all(r.loads_weights for r in streamed.records)
    image = streamed.layouts[0].dram_image().size
    assert all(r.counters.bytes_in == image + r.tokens * SMALL.hidden_size
               for r in streamed.records)
    return streamed


def test_streamed_step_program_equals_resident_bits_golden(small_block):
    _streamed_equals_resident(GoldenAccelerator, small_block)


@pytest.mark.rtl
def test_streamed_step_program_equals_resident_bits_rtl(small_block):
    """On the RTL (overlapping controller): the same bits, and every run's counters equal the
    cycle model's (run_cycles) for the same programs."""
    from hw_offload.driver import Accelerator
    from hw_offload.golden_cycles import CycleModelAccelerator
    with Accelerator("test") as acc:
        rtl = _streamed_equals_resident(lambda: acc, small_block)
    model = _streamed_equals_resident(lambda: CycleModelAccelerator(acc.config), small_block)
    for got, want in zip(rtl.records, model.records):
        assert got.counters.to_dict() == want.counters.to_dict()
    assert any(r.counters.overlap for r in rtl.records)     # the units did run at once


@pytest.mark.parametrize("s, past", [(PROMPT, 0), (1, PROMPT)])
def test_every_weight_row_is_loaded_before_it_is_read(small_block, s, past):
    qb, _ = small_block
    hw = GoldenAccelerator().config
    plan, layouts, _ = plan_blocks([qb], hw, SMALL.max_seq_len, 1, "stream")
    wl = layouts[0]
    program = block_program(qb, wl, rescales(qb), hw, plan.kv[(0, 0)], s, past, plan.scratch_a,
                            plan.x_dram, plan.y_dram, a_end=plan.a_end, weights_dram=0)
    loaded = np.zeros(hw.w_rows, dtype=int)        # times each W row was loaded so far
    loads = 0
    for i in program:
        if i.op == OP_LOAD and i.flags & 3 == MEM_W:
            loaded[i.dst:i.dst + i.rows] += 1
            # the piece comes from its place in the DRAM image
            assert i.dram == wl.image_row(i.dst) * hw.n
            loads += 1
            continue
        lo, hi = footprint(i, hw).reads.get(MEM_W, (0, 0))
        assert loaded[lo:hi].all(), f"{i} reads W rows [{lo}, {hi}) before they are loaded"
    # the whole image, each row once, at least one LOAD per piece (a matrix, the scale tables
    # and gains, the RoPE table; the first projection's matrix in parts)
    parts = wl.w_parts()                 # the matrices, and the tables in a bank of their own
    assert sum(rows for _, _, rows in parts) == wl.rows
    assert all((loaded[lo:lo + rows] == 1).all() for lo, _, rows in parts)
    assert loaded.sum() == wl.rows
    assert loads >= len(weight_segments(wl))
    # interleaved: some compute between the first and the last weight LOAD
    at = [k for k, i in enumerate(program) if i.op == OP_LOAD and i.flags & 3 == MEM_W]
    assert any(program[k].op != OP_LOAD for k in range(at[0], at[-1]))


@pytest.fixture(scope="module")
def tiny_streamed_decode():
    """tiny's block shape (one block, weights streamed as on chip16), decode of one token at
    position max_seq_len - 1: -> (hw, program with its weight LOADs, the program without them,
    the separate weight-load program the session used to run before each call)."""
    cfg = get_preset("tiny")
    layer, cos, sin, calib, _ = make_block(cfg, 0)
    qb = quantize_block(layer, cfg, calib[:2], cos, sin)
    hw = GoldenAccelerator("chip16").config
    plan, (wl,), _ = plan_blocks([qb], hw, cfg.max_seq_len, 1, "stream")
    args = (qb, wl, rescales(qb), hw, plan.kv[(0, 0)], 1, cfg.max_seq_len - 1, plan.scratch_a,
            plan.x_dram, plan.y_dram)
    return (hw, block_program(*args, a_end=plan.a_end, weights_dram=0),
            block_program(*args, a_end=plan.a_end), weight_load_program(wl, 0, hw.n))


def test_tiny_streamed_decode_overlaps_weight_dma_with_compute(tiny_streamed_decode):
    hw, program, step_only, load_only = tiny_streamed_decode
    run = run_cycles(program + [HALT], hw)
    sequential = sum(insn_cycles(i, hw).cycles for i in program + [HALT])
    two_runs = run_cycles(load_only + [HALT], hw).cycles + run_cycles(step_only + [HALT], hw).cycles
    print(f"tiny decode, one block streamed: {run.cycles} cycles overlapped, {sequential} "
          f"sequential, {two_runs} as a load run plus a step run; DMA {run.dma_busy}, "
          f"array {run.array_busy}, overlap {run.overlap}")
    assert run.cycles < sequential
    assert run.cycles < two_runs
    # the prefetch hides most of the weight DMA under the array's work
    assert run.overlap >= run.dma_busy // 2
    assert run.cycles < run.array_busy + run.dma_busy


@pytest.mark.parametrize("s, past", [(57, 5), (49, 5), (30, 17)])   # (57, 5), (49, 5): a sum
# of instruction cycles would pick a slower grouping
def test_query_grouping_is_the_fastest_scheduled_program(s, past):
    """The grouping chooser prices whole programs as the overlapping controller runs them
    (run_cycles), not as a sum of instruction cycles: its pick is the fastest of them all."""
    cfg = SMALL.replace(max_seq_len=64)
    layer, cos, sin, calib, _ = make_block(cfg, 6)
    qb = quantize_block(layer, cfg, calib[:2], cos, sin)
    hw = GoldenAccelerator().config
    plan, (wl,), _ = plan_blocks([qb], hw, cfg.max_seq_len, 1, "resident")
    args = (qb, wl, rescales(qb), hw, plan.kv[(0, 0)], s, past, plan.scratch_a, plan.x_dram,
            plan.y_dram)

    def cycles(per_group):
        return run_cycles(block_program(*args, per_group=per_group) + [HALT], hw).cycles
    key_rows = -(-(past + s) // hw.n) - past // hw.n
    options = {k: cycles(k) for k in range(1, key_rows + 1)}
    assert len(set(options.values())) > 1          # the choice matters for this step
    assert cycles(None) == min(options.values()), options


def test_post_attention_parts_give_the_same_bits(small_block, monkeypatch):
    """block_program may cut o_proj, gate/up and down (and their vector ops) into column
    ranges (compiler.POST_PARTS): every cut computes the same bits as the uncut program."""
    import hw_offload.compiler as compiler
    qb, x_q = small_block
    outs, programs = {}, {}
    for parts in (1, 2, 4):
        monkeypatch.setattr(compiler, "POST_PARTS", (parts,))
        session = ModelSession([qb], SMALL.max_seq_len, 1, device=GoldenAccelerator(),
                               weights="resident", progress=False)
        session.device.write_mem(session.plan.y_dram, np.full(PROMPT * SMALL.hidden_size, POISON,
                                                              dtype=np.uint8))
        outs[parts] = _steps(session, x_q, poison=False)
        programs[parts] = session._program(0, [0], PROMPT, 0, keep_kv=False)
    assert len(programs[4]) > len(programs[2]) > len(programs[1])     # really cut
    for parts in (2, 4):
        for y, y_ref in zip(outs[parts], outs[1]):
            np.testing.assert_array_equal(y, y_ref)
