"""Host control over AXI4-Lite and the done (irq) line: the harness reaches the registers and
the instruction memory only through the accelerator's AXI4-Lite slave and waits for a run on
its irq output."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from hw_offload.driver import Accelerator
from hw_offload.isa import (IMEM_BASE, INSN_BYTES, OP_GEMM, OP_HALT, OP_REQ, REG_START_PC,
                            REG_STATUS, Insn, encode_program)

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


def test_irq_is_low_until_a_run_ends_and_falls_again_at_the_next_start():
    with Accelerator("test") as acc:
        assert not acc.irq                                   # nothing has run yet
        acc.write_program(encode_program([Insn(OP_GEMM, rows=64, blocks=2, aux=2),
                                          Insn(OP_HALT)]))
        lib, h, cycles = acc._lib, acc._handle(), ctypes.c_uint64()
        assert lib.accel_run(h, 50, ctypes.byref(cycles)) == 1   # still running after 50
        assert not acc.irq and acc.read_reg(REG_STATUS) & 1
        assert lib.accel_resume(h, 1_000_000, ctypes.byref(cycles)) == 0
        assert acc.irq and acc.read_reg(REG_STATUS) == 0b010     # done, no error
        assert lib.accel_run(h, 10, ctypes.byref(cycles)) == 1   # the next start clears it
        assert not acc.irq
        assert lib.accel_resume(h, 1_000_000, ctypes.byref(cycles)) == 0 and acc.irq


def test_instruction_memory_and_registers_round_trip_over_axi_lite(rtl):
    """Random instruction words written word by word over AXI4-Lite read back equal (the
    driver's error report reads them the same way), at the first and last instruction slots;
    START_PC holds what write_program put there."""
    rng = np.random.default_rng(11)
    depth = rtl.config.imem_depth
    for slot in (0, depth - 3):
        words = rng.integers(0, 2**32, (3, 8), dtype=np.uint32)
        rtl.write_mem(IMEM_BASE + slot * INSN_BYTES, words.reshape(-1))
        got = rtl.read_mem(IMEM_BASE + slot * INSN_BYTES, words.nbytes).view(np.uint32)
        assert np.array_equal(got, words.reshape(-1))
    rtl.write_program(encode_program([Insn(OP_REQ, rows=1, blocks=1, mult0=1), Insn(OP_HALT)]),
                      start_pc=7)
    assert rtl.read_reg(REG_START_PC) == 7
    assert rtl.run(10_000).instructions == 2


def test_instruction_memory_is_refused_while_running():
    with Accelerator("test") as acc:
        acc.write_program(encode_program([Insn(OP_GEMM, rows=64, blocks=2, aux=2), Insn(OP_HALT)]))
        lib, h, cycles = acc._lib, acc._handle(), ctypes.c_uint64()
        assert lib.accel_run(h, 20, ctypes.byref(cycles)) == 1
        buf = np.zeros(8, dtype=np.uint32).tobytes()
        assert lib.accel_write_mem(h, IMEM_BASE, buf, len(buf)) != 0
        assert "running" in acc._error()
        assert lib.accel_resume(h, 1_000_000, ctypes.byref(cycles)) == 0
        words = acc.read_mem(IMEM_BASE, 32).view(np.uint32)
        assert Insn.decode(words).op == OP_GEMM               # the program was not overwritten
