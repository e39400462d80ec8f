"""The overlapping controller's schedule (cycle_model.run_cycles) on hand-timed programs, and the
footprints its hazard checks use (footprint.py). Expected cycles are derived by hand from the
rules in ISA.md, "Overlap", not from the model; the fuzzer holds the RTL to the model."""
import pytest

from hw_offload.cycle_model import gemm_busy_cycles, run_cycles, vector_busy_cycles
from hw_offload.footprint import bank_mask, footprint
from hw_offload.isa import (COLSCALE_A, GEMM_ACCUMULATE, GEMM_B_FROM_A, MEM_A, MEM_ACC, MEM_W, OP_GEMM, OP_HALT,
                            OP_LOAD, OP_REQ, OP_ROPE, OP_STORE, HwConfig, Insn)
from hw_offload.mem_timing import MemoryTiming

CFG = HwConfig()
N = CFG.n
HALT = Insn(OP_HALT)
LOAD_W = Insn(OP_LOAD, flags=MEM_W, rows=64, dst=0, dram=0)          # W rows [0, 64): 64 beats
GEMM_FAR = Insn(OP_GEMM, rows=8, blocks=1, aux=1, dst=0, src0=0, src1=1000)   # W [1000, 1016)
GEMM_NEAR = GEMM_FAR.replace(src1=48)                                 # W [48, 64): LOAD's rows
G = gemm_busy_cycles(8, 1, 1, N)


def totals_identity(c) -> bool:
    return c.cycles == c.stall + c.array_busy + c.vector_busy + c.dma_busy - c.overlap - c.all_busy


def test_independent_gemm_runs_under_a_load():
    # LOAD: FETCH 0, DECODE/dispatch 1, busy 2..65, retires 65. GEMM: FETCH 2, dispatch 3,
    # busy 4..3+G, retires 4+G (< 65). HALT: FETCH 4, waits for the LOAD, stops in 66.
    c = run_cycles([LOAD_W, GEMM_FAR, HALT], CFG)
    assert (c.cycles, c.dma_busy, c.array_busy, c.overlap, c.all_busy) == (67, 64, G, G, 0)
    assert c.stall == 67 - 64
    assert totals_identity(c)


def test_gemm_reading_loaded_rows_waits_for_the_load():
    # the GEMM reads W rows the LOAD writes: dispatch in 66, busy 67..66+G, retires 67+G;
    # HALT fetched in 67, stops in 68+G
    c = run_cycles([LOAD_W, GEMM_NEAR, HALT], CFG)
    assert (c.cycles, c.overlap) == (69 + G, 0)
    assert c.stall == c.cycles - 64 - G
    assert totals_identity(c)


def test_same_unit_waits_for_its_previous_instruction():
    # two independent GEMMs: the second dispatches the cycle after the first retires (3 + G);
    # HALT, fetched in 4 + G, waits for it to retire in 4 + 2G
    c = run_cycles([GEMM_FAR, GEMM_FAR.replace(dst=100), HALT], CFG)
    assert (c.cycles, c.array_busy, c.overlap) == (2 * G + 6, 2 * G, 0)


def test_vector_op_overlaps_an_independent_gemm():
    req = Insn(OP_REQ, rows=8, blocks=1, dst=200, src0=100, mult0=1, shift0=0)   # ACC [100, 108)
    v = vector_busy_cycles(req, N)
    # GEMM dispatch 1 (busy 2..1+G); REQ fetched 2, dispatched 3, busy 4..3+v; both end before
    # HALT waits: GEMM retires 2+G, REQ 4+v
    c = run_cycles([GEMM_FAR, req, HALT], CFG)
    assert v < G
    assert (c.cycles, c.overlap) == (G + 4, v)
    # reading the GEMM's output (ACC [0, 8)) makes it wait for the GEMM to retire
    c = run_cycles([GEMM_FAR, req.replace(src0=0), HALT], CFG)
    assert (c.cycles, c.overlap) == (G + v + 6, 0)


def test_bank_mask():
    b = CFG.bank_rows(MEM_A)                      # 4096 rows per bank at the default sizes
    assert b == CFG.a_rows // 4
    assert bank_mask((0, 0), b) == 0
    assert bank_mask((0, 1), b) == 0b0001
    assert bank_mask((b - 1, b + 1), b) == 0b0011   # straddles banks 0 and 1
    assert bank_mask((b, 2 * b), b) == 0b0010       # ends where bank 2 begins
    assert bank_mask((5, 4 * b), b) == 0b1111


def test_store_and_gemm_share_a_bank_read_port():
    # GEMM_FAR reads A rows [0, 8) (bank 0); a STORE from A bank 0 (no data hazard) needs that
    # bank's one read port and waits; one from bank 1 runs under the GEMM (4 beats, G > 8)
    near = Insn(OP_STORE, flags=MEM_A, rows=4, src0=500, dram=0)
    far = near.replace(src0=CFG.bank_rows(MEM_A) + 500)
    assert footprint(near, CFG).read_banks[MEM_A] & footprint(GEMM_FAR, CFG).read_banks[MEM_A]
    assert run_cycles([GEMM_FAR, near, HALT], CFG).overlap == 0
    assert run_cycles([GEMM_FAR, far, HALT], CFG).overlap == 4
    # the accumulator: only an accumulating GEMM reads (claims) its C banks
    store_c = Insn(OP_STORE, flags=MEM_ACC, rows=4, src0=500, dram=0)   # 4 x 4 beats of 16 B
    assert run_cycles([GEMM_FAR, store_c, HALT], CFG).overlap == 16
    acc = GEMM_FAR.replace(flags=GEMM_ACCUMULATE)
    assert run_cycles([acc, store_c, HALT], CFG).overlap == 0


def test_posted_writes_fence_a_load_and_the_halt():
    t = MemoryTiming(latency_cycles=10, bytes_per_cycle=16)
    store = Insn(OP_STORE, flags=MEM_A, rows=4, src0=0, dram=0)
    # STORE: dispatch 1, beats 2..5 (busy 4), retires 5, writes acknowledged from 5 + 12 = 17
    c = run_cycles([store, HALT], CFG, timing=t)
    assert c.cycles == 18
    load = Insn(OP_LOAD, flags=MEM_A, rows=4, dst=100, dram=64)
    # the LOAD (FETCH 2) waits in DECODE until 17, busy 18..18+10+3, retires 31; HALT stops in 32
    c = run_cycles([store, load, HALT], CFG, timing=t)
    assert (c.cycles, c.dma_busy) == (33, 4 + 14)


@pytest.mark.parametrize("stop, extra", [("decode_error", 1), ("pc_error", 0)])
def test_stops_wait_for_units_to_drain(stop, extra):
    # a stop after the LOAD: FETCH 2 (+ DECODE 3), drained after the LOAD retires in 65
    c = run_cycles([LOAD_W], CFG, stop=stop)
    assert c.cycles == 67
    c = run_cycles([GEMM_FAR], CFG, stop=stop)   # retires 2 + G; the stop comes after
    assert c.cycles == max(2 + extra, 3 + G) + 1


def test_footprints_cover_what_the_golden_model_touches():
    gemm_a = Insn(OP_GEMM, flags=GEMM_B_FROM_A, rows=3, blocks=2, aux=2, dst=7, src0=10, src1=40)
    fp = footprint(gemm_a, CFG)
    # A operand and B in one span; with 2 K blocks the second adds to the C rows the first
    # wrote, so C is read back (and claims its ACC bank's read port) even without the
    # accumulate flag
    assert fp.reads == {MEM_A: (10, 40 + 2 * N * 2), MEM_ACC: (7, 7 + 3 * 2)}
    assert fp.writes == {MEM_ACC: (7, 7 + 3 * 2)}
    assert (fp.read_banks, fp.write_banks) == ({MEM_A: 0b0001, MEM_ACC: 0b0001}, {MEM_ACC: 0b0001})
    assert MEM_ACC not in footprint(gemm_a.replace(blocks=1), CFG).reads
    rope = Insn(OP_ROPE, flags=COLSCALE_A, rows=5, blocks=2, aux=N, src2=2, dst=0, src0=3,
                src1=100, cs0=20, mult0=1)
    fp = footprint(rope, CFG)
    # table: 2 rows per (position, block-in-head) at w = N, 5 positions x 2 blocks; cs0 4 rows
    assert fp.reads == {MEM_ACC: (3, 13), MEM_W: (20, 100 + 5 * 2 * 2)}
    assert fp.writes == {MEM_A: (0, 10)}


def test_run_without_halt_is_refused():
    with pytest.raises(ValueError, match="no HALT"):
        run_cycles([LOAD_W], CFG)
