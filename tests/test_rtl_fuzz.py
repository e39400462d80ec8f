"""Differential fuzzing of the RTL against the golden model and the cycle model (hw_offload.fuzz).

The default run is a fixed budget of programs from a fixed seed (deterministic, ~25 s); the
slow run draws a fresh seed, prints it, and runs many more. Replay any failure with
``HW_TEST_SEED=<seed> pytest tests/test_rtl_fuzz.py`` or ``python -m hw_offload.fuzz --seed <seed>``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from hw_offload.cycle_model import run_cycles
from hw_offload.driver import Accelerator
from hw_offload.fuzz import check, env_seed, fuzz, make_program
from hw_offload.isa import GEMM_B_FROM_A, GEMM_TRANSPOSE_B, OP_GEMM, OP_HALT, Insn, encode_program

pytestmark = pytest.mark.rtl

DEFAULT_SEED, DEFAULT_PROGRAMS = 20261121, 600


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


def _report(rep) -> str:
    lines = [rep.summary()]
    for prog, problems in rep.failures:
        lines += [str(prog), *("  MISMATCH " + p for p in problems),
                  f"replay: python -m hw_offload.fuzz --seed {prog.seed} --programs 1"]
    return "\n".join(lines)


def test_fuzz_fixed_budget(rtl):
    seed = env_seed(DEFAULT_SEED)
    rep = fuzz(rtl, seed, programs=DEFAULT_PROGRAMS)
    print(rep.summary())
    assert not rep.failures, _report(rep)
    assert rep.programs == DEFAULT_PROGRAMS
    # the distribution reaches every kind of ending (HALT, no HALT, each malformed tail)
    assert len(rep.outcomes) >= 11, rep.outcomes


@pytest.mark.slow
@pytest.mark.sweep
def test_fuzz_long_random_seed(rtl):
    seed = env_seed(int.from_bytes(os.urandom(3), "little"))
    print(f"fuzz seed {seed} (replay: HW_TEST_SEED={seed})")
    rep = fuzz(rtl, seed, programs=int(os.environ.get("HW_FUZZ_PROGRAMS", "5000")))
    print(rep.summary())
    assert not rep.failures, _report(rep)


def test_fuzz_detects_a_corrupted_byte_and_a_wrong_cycle_model(rtl, monkeypatch):
    """The comparison can fail: a golden model that drops one DRAM byte, and a cycle model
    off by one GEMM cycle, are both reported."""
    prog = make_program(rtl.config, 3)
    assert check(rtl, prog) == []
    import hw_offload.fuzz as fz
    real = fz.GoldenAccelerator

    class Corrupt(real):
        def run(self, max_cycles=None):
            try:
                return super().run(max_cycles)
            finally:
                self.dram[5] ^= 1
    monkeypatch.setattr(fz, "GoldenAccelerator", Corrupt)
    assert any("DRAM low window" in p for p in check(rtl, prog))
    monkeypatch.setattr(fz, "GoldenAccelerator", real)
    monkeypatch.setattr(fz, "run_cycles", lambda *a, **k: _plus_one(run_cycles(*a, **k)))
    assert any("counter cycles" in p for p in check(rtl, prog))


def _plus_one(c):
    c.cycles += 1
    return c


@pytest.mark.parametrize("flags", [0, GEMM_B_FROM_A, GEMM_B_FROM_A | GEMM_TRANSPOSE_B])
def test_cycle_model_gemm_matches_rtl_around_the_bank_reuse_limit(rtl, flags):
    """GEMM cycles for M around N and 2N+1 (where the weight loader stops being hidden), with
    B in the weight SRAM and in the activation SRAM (loader and injector share the A port)."""
    n = rtl.config.n
    for m in (1, n - 1, n, n + 1, 2 * n, 2 * n + 1, 2 * n + 2):
        prog = [Insn(OP_GEMM, flags=flags, rows=m, blocks=2, aux=3), Insn(OP_HALT)]
        rtl.write_program(encode_program(prog))
        got = rtl.run(100_000)
        want = run_cycles(prog, rtl.config)
        assert (got.cycles, got.array_busy, got.stall) == (want.cycles, want.array_busy, want.stall), m


def test_programs_overlap_and_collide(monkeypatch):
    """The drawn programs exercise the overlapping controller (no RTL needed): in their
    schedule (cycle_model.run_cycles over what golden executed) units overlap, all three run
    at once in some, the hazard checks hold instructions back in most, and in many a bank-port
    claim alone does (the schedule with data hazards only differs), so a scoreboard that
    misses a hazard or waits needlessly meets programs where that shows."""
    import hw_offload.footprint as fp
    from hw_offload.fuzz import _executed, _run
    from hw_offload.golden import GoldenAccelerator
    from hw_offload.isa import HwConfig
    cfg, conflicts = HwConfig(), fp.Footprint.conflicts
    overlap = all_busy = held = bank_held = total = 0
    for seed in range(DEFAULT_SEED, DEFAULT_SEED + 80):
        prog = make_program(cfg, seed)
        err, c = _run(GoldenAccelerator(cfg), prog)
        stop = "halt" if err is None else ("pc_error" if err[1] >= cfg.imem_depth else "decode_error")
        executed = _executed(prog, c.instructions)
        got = run_cycles(executed, cfg, stop)
        monkeypatch.setattr(fp.Footprint, "conflicts", lambda a, b: False)
        free = run_cycles(executed, cfg, stop)
        monkeypatch.setattr(fp.Footprint, "conflicts", fp.Footprint.shares_rows)
        rows_only = run_cycles(executed, cfg, stop)
        monkeypatch.setattr(fp.Footprint, "conflicts", conflicts)
        total += 1
        overlap += got.overlap > 0
        all_busy += got.all_busy > 0
        held += free.cycles != got.cycles
        bank_held += rows_only.cycles != got.cycles
    assert overlap >= total // 2 and all_busy >= total // 20 and held >= total // 2, \
        (total, overlap, all_busy, held)
    assert bank_held >= total // 4, (total, bank_held)


def test_programs_are_reproducible_from_their_seed(rtl):
    a, b = make_program(rtl.config, 11), make_program(rtl.config, 11)
    assert np.array_equal(a.words, b.words) and np.array_equal(a.dram_lo, b.dram_lo)
    assert not np.array_equal(a.words, make_program(rtl.config, 12).words)


def test_past_end_fits_its_field_in_a_65536_row_sram(monkeypatch):
    """A malformed "one row past the end" LOAD of one row into the 65536-row weight SRAM would
    start at row 65536, which no 16-bit field holds (the generator used to raise there): it
    becomes two rows starting at row 65535, still refused as out of range by decode."""
    from hw_offload.fuzz import Generator
    from hw_offload.golden import validate
    from hw_offload.isa import ERR_RANGE, MEM_W, OP_LOAD, HwConfig
    cfg = HwConfig()
    assert cfg.w_rows == 65536
    gen = Generator(cfg, np.random.default_rng(0))
    monkeypatch.setattr(gen, "legal", lambda: Insn(OP_LOAD, flags=MEM_W, rows=1, dst=0, dram=0))
    monkeypatch.setattr(gen, "chance", lambda p: True)             # the SRAM-row branch
    monkeypatch.setattr(gen, "pick", lambda options: "past_end" if "past_end" in options else options[0])
    words, text = gen.malformed()
    insn = Insn.decode(words)
    assert (insn.rows, insn.dst) == (2, 65535), text
    assert validate(insn, cfg) == ERR_RANGE
