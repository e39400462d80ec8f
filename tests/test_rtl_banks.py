"""Banked SRAMs (ISA.md "Memories", "Overlap"): two instructions that claim one bank port wait
for each other although they share no row; in different banks they run at once.

Each case is a pair of instructions for two units placed in the same bank of one SRAM (disjoint
rows: a structural hazard only) or in the neighbouring bank. The schedule rule (ISA.md
"Overlap": a conflicting instruction dispatches in the cycle after the one in flight retires;
an independent one in the cycle after its FETCH, which follows the previous dispatch) is
checked on cycle_model.schedule, the RTL's counters must equal cycle_model.run_cycles's, and
the outputs (DRAM poisoned first) must equal the golden model's bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.cycle_model import run_cycles, schedule
from hw_offload.footprint import footprint
from hw_offload.isa import (GEMM_ACCUMULATE, MEM_A, MEM_ACC, MEM_W, OP_GEMM, OP_HALT, OP_LOAD,
                            OP_REQ, OP_RMS, OP_STORE, HwConfig, Insn)
from hw_offload.testing import POISON, Staging

CFG = HwConfig()
N = CFG.n
BA, BW, BC = CFG.bank_rows(MEM_A), CFG.bank_rows(MEM_W), CFG.bank_rows(MEM_ACC)
M = 48                              # GEMM rows: long enough for the second op to run under it
GEMM = Insn(OP_GEMM, rows=M, blocks=1, aux=1, dst=0, src0=0, src1=1000)   # A [0, M), W, ACC [0, M)


def _store(rows: int, src0: int, mem: int = MEM_A) -> Insn:
    return Insn(OP_STORE, flags=mem, rows=rows, src0=src0, dram=0)


def _load(rows: int, dst: int, mem: int) -> Insn:
    return Insn(OP_LOAD, flags=mem, rows=rows, dst=dst, dram=0)


def _req(src0: int, dst: int) -> Insn:
    return Insn(OP_REQ, rows=8, blocks=1, dst=dst, src0=src0, mult0=3, shift0=2)


def _rms(gain: int) -> Insn:
    return Insn(OP_RMS, rows=4, blocks=2, dst=2 * BA + 40, src0=2 * BA, src1=gain, mult0=200,
                shift0=7)


# (first, second, same bank): the second shares a bank port with the first in the first case
# of each pair, and none in the second
CASES = {
    # a STORE reading A beside a GEMM reading A rows [0, M) (bank 0)
    "store-a-vs-gemm-read": (GEMM, _store(4, 100), _store(4, BA + 100)),
    # a LOAD writing A beside a vector op writing A (bank 0 / bank 1)
    "load-a-vs-vector-write": (_req(200, 300), _load(4, 400, MEM_A), _load(4, BA + 400, MEM_A)),
    # a LOAD writing ACC beside a GEMM writing C rows [0, M) (bank 0)
    "load-acc-vs-gemm-write": (GEMM, _load(4, 500, MEM_ACC), _load(4, BC + 500, MEM_ACC)),
    # a vector op reading ACC beside a GEMM with 2 K blocks, which reads its C rows back
    "req-vs-kblock-gemm-c-read": (GEMM.replace(blocks=2), _req(600, 2 * BA), _req(BC + 600, 2 * BA)),
    # ... and beside an accumulating GEMM
    "req-vs-accumulating-gemm": (GEMM.replace(flags=GEMM_ACCUMULATE), _req(600, 2 * BA),
                                 _req(BC + 600, 2 * BA)),
    # RMS's gain row in W beside a GEMM reading W rows [1000, 1016) (bank 0)
    "rms-gain-vs-gemm-w-read": (GEMM, _rms(2000), _rms(BW + 2000)),
}


def _stage(first: Insn, second: Insn, rng: np.random.Generator) -> Staging:
    """LOAD random data into every row the pair reads or writes (so stale rows cannot pass), run
    the pair, STORE every row it writes and those the STOREs read."""
    st = Staging(N)
    fps = [footprint(i, CFG) for i in (first, second)]
    # the first's rows last: it waits for them, so the DMA engine is free when it dispatches
    for fp in reversed(fps):
        for mem, (lo, hi) in [*fp.reads.items(), *fp.writes.items()]:
            if mem == MEM_ACC:
                st.load(mem, rng.integers(-2**31, 2**31, (hi - lo, N), dtype=np.int64).astype(np.int32), lo)
            else:
                st.load(mem, rng.integers(-128, 128, (hi - lo, N), dtype=np.int64).astype(np.int8), lo)
    dram = st._dram(64 * N * 4)
    st.ops = [i.replace(dram=dram + k * 32 * N * 4) if i.op in (OP_LOAD, OP_STORE) else i
              for k, i in enumerate((first, second))]
    for k, i in enumerate(st.ops):
        if i.op == OP_LOAD:      # its source lines in DRAM
            lines = i.rows * (4 if i.flags == MEM_ACC else 1)
            st.dram.append((i.dram, rng.integers(-128, 128, lines * N, dtype=np.int64).astype(np.int8)))
    for k, fp in enumerate(fps):
        for mem, (lo, hi) in fp.writes.items():
            st.store(f"op{k} mem{mem} [{lo}, {hi})", mem, lo, hi - lo)
        if st.ops[k].op == OP_STORE:
            st.outputs.append((f"op{k} STORE", st.ops[k].dram, st.ops[k].rows * N))
    return st


def test_cases_are_structural_hazards_or_none():
    """The same-bank variant claims a bank port of the first instruction and shares no row with
    it; the other-bank variant does not conflict at all."""
    for name, (first, same, other) in CASES.items():
        a, b, c = (footprint(i, CFG) for i in (first, same, other))
        assert b.shares_a_bank_port(a) and not b.shares_rows(a), name
        assert not c.conflicts(a), name
    # a GEMM with one K block that does not accumulate never reads its C rows: no ACC claim
    assert not footprint(_req(600, 2 * BA), CFG).conflicts(footprint(GEMM, CFG))


@pytest.mark.rtl
@pytest.mark.parametrize("name", sorted(CASES))
def test_bank_port_claims_hold_apart_or_overlap(rtl, name):
    first, same, other = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    cycles = {}
    for variant, second in (("same bank", same), ("other bank", other)):
        st = _stage(first, second, rng)
        program = st.pre + st.ops + st.post
        k = len(st.pre)
        sched = schedule(program, CFG)
        if variant == "same bank":   # waits for the first to retire
            assert sched.dispatch[k + 1] == sched.retire[k] + 1, (name, variant)
        else:                        # fetched right after the first's dispatch, dispatched next
            assert sched.dispatch[k + 1] == sched.dispatch[k] + 2, (name, variant)
        got, want, counters = st.run_both(rtl)
        model = run_cycles(program + [Insn(OP_HALT)], CFG)
        for key, value in model.to_dict().items():
            assert getattr(counters, key) == value, (name, variant, key)
        for out in want:
            assert np.array_equal(got[out], want[out]), (name, variant, out)
            assert not np.all(got[out] == POISON), (name, variant, out)
        cycles[variant] = counters.cycles
    # the wait for the bank port costs cycles
    assert cycles["same bank"] > cycles["other bank"], (name, cycles)


@pytest.fixture(scope="module")
def rtl():
    from hw_offload.driver import Accelerator
    with Accelerator("test") as acc:
        yield acc
