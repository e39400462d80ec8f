"""The vector unit's single read port per SRAM (vector_unit.sv): the ops that need two rows of one
SRAM per beat (SWIGLU's gate and up from ACC, ROPE's two table rows from W) and the ops whose
per-block tables are first copied into the unit's table SRAM (RMS gain, column scales) run
bit-exact with the golden model and take exactly the cycles the cycle model predicts, which
for the simple ops is also derived here by hand: 1 (start) + table rows + beats * cycles per
beat + 13 (drain).

Odd shapes on purpose (rows not a multiple of anything, 3 blocks, tables at odd W rows), and
the destination rows, one row on either side, are poisoned first, so an unwritten or a stray
byte fails.
"""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.configs import AccelConfig
from hw_offload.cycle_model import run_cycles, vector_busy_cycles
from hw_offload.driver import Accelerator
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import COLSCALE_A, COLSCALE_B, OP_HALT, OP_RESADD, OP_RMS, OP_ROPE, OP_SWIGLU, Insn
from hw_offload.testing import MEM_A, MEM_ACC, MEM_W, Staging

pytestmark = pytest.mark.rtl
N = 16
POISON_ROW = np.full((1, N), 0x5A, dtype=np.uint8).view(np.int8)
# LANES < N: a beat covers a quarter of a block (small SRAMs: a cheap build of its own)
LANES4 = AccelConfig("lanes4", n=16, lanes=4, a_rows=2048, w_rows=4096, acc_rows=2048,
                     dram_bytes=256 * 1024, imem_depth=1024)


def _acc(rng, rows, mag):
    return rng.integers(-mag, mag, (rows, N), dtype=np.int64).astype(np.int32)


def _table(rng, blocks):
    """A column-scale table: one uint16 per column, 2 W rows per block."""
    return rng.integers(0, 2**16, blocks * N, dtype=np.int64).astype(np.uint16).view(
        np.int8).reshape(2 * blocks, N)


def _cases(rng):
    """(insn, staging) pairs: SWIGLU with both column scales, ROPE with two table rows per
    position (aux = 12 > N/2) and a column scale, RMS (gain table), RESADD (column scale)."""
    rows, blocks, dst = 7, 3, 301
    out = []
    st = Staging()
    st.load(MEM_ACC, _acc(rng, rows * blocks, 2**22), 10)          # gate
    st.load(MEM_ACC, _acc(rng, rows * blocks, 2**22), 1001)        # up
    st.load(MEM_W, _table(rng, blocks), 3001)
    st.load(MEM_W, _table(rng, blocks), 3507)
    out.append((Insn(OP_SWIGLU, flags=COLSCALE_A | COLSCALE_B, rows=rows, blocks=blocks, dst=dst,
                     src0=10, src1=1001, cs0=3001, cs1=3507, mult0=40001, shift0=19,
                     mult1=30011, shift1=29), st, 2))
    st = Staging()
    bph, aux, pos = 3, 12, 5                                       # 2*aux > N: 2 table rows
    st.load(MEM_ACC, _acc(rng, pos * blocks, 2**24), 33)
    st.load(MEM_W, rng.integers(-16384, 16385, (pos * bph * 2, N // 2)).astype(np.int16)
            .view(np.int8).reshape(-1, N), 77)
    st.load(MEM_W, _table(rng, blocks), 2999)
    out.append((Insn(OP_ROPE, flags=COLSCALE_A, rows=pos, blocks=blocks, aux=aux, src2=bph,
                     dst=dst, src0=33, src1=77, cs0=2999, mult0=50003, shift0=41), st, 2))
    st = Staging()
    st.load(MEM_A, rng.integers(-128, 128, (rows * blocks, N)).astype(np.int8), 5)
    st.load(MEM_W, rng.integers(-128, 128, (blocks, N)).astype(np.int8), 4001)
    out.append((Insn(OP_RMS, rows=rows, blocks=blocks, dst=dst, src0=5, src1=4001,
                     mult0=45000, shift0=29), st, None))
    st = Staging()
    st.load(MEM_A, rng.integers(-128, 128, (rows * blocks, N)).astype(np.int8), 5)
    st.load(MEM_ACC, _acc(rng, rows * blocks, 2**24), 555)
    st.load(MEM_W, _table(rng, blocks), 1203)
    out.append((Insn(OP_RESADD, flags=COLSCALE_A, rows=rows, blocks=blocks, dst=dst, src0=5,
                     src1=555, cs0=1203, mult0=30000, mult1=20000, shift0=15, shift1=12), st, 1))
    return out


def _check(acc, cfg):
    rng = np.random.default_rng(17)
    for insn, st, per_beat in _cases(rng):
        rb = insn.rows * insn.blocks
        # poison the destination and one row on either side, in the SRAM itself
        st.load(MEM_A, np.repeat(POISON_ROW, rb + 2, axis=0), insn.dst - 1)
        st.ops.append(insn)
        st.store("y", MEM_A, insn.dst - 1, rb + 2)
        got, counters = st.run(acc)
        want, _ = st.run(GoldenAccelerator(acc.config))
        y = want["y"].reshape(rb + 2, N)
        assert (y[0] == 0x5A).all() and (y[-1] == 0x5A).all()   # the guards stay poisoned
        bad = np.flatnonzero(got["y"] != want["y"])
        assert bad.size == 0, f"{insn}: {bad.size} bytes differ from golden, first {bad[0]}"
        busy = vector_busy_cycles(insn, cfg.n, cfg.lanes)
        if per_beat is not None:                                 # by hand, independently
            fill = insn.blocks * (2 * bin(insn.flags).count("1"))
            beats = rb * (cfg.n // cfg.lanes)
            assert busy == 1 + fill + beats * per_beat + 13
        assert counters.vector_busy == busy, insn
        want_counts = run_cycles(st.pre + st.ops + st.post + [Insn(OP_HALT)], acc.config,
                                 timing=acc.memory_timing, lanes=cfg.lanes).to_dict()
        assert {k: getattr(counters, k) for k in want_counts} == want_counts, insn


def test_single_port_ops_match_golden_and_the_cycle_model():
    with Accelerator("test") as acc:
        _check(acc, acc.accel_config)


@pytest.mark.slow
def test_single_port_ops_with_fewer_lanes_than_n():
    with Accelerator("test", config=LANES4) as acc:
        _check(acc, LANES4)
