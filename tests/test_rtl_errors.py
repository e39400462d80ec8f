"""Bad input: malformed instructions, out-of-range addresses, cycle limits -> exceptions."""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.driver import Accelerator
from hw_offload.errors import AcceleratorError, AddressError, CycleLimitError
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import (COLSCALE_A, COLSCALE_B, ERR_FIELD, ERR_OPCODE, ERR_PC, ERR_RANGE,
                            IMEM_BASE, MEM_A, MEM_ACC, OP_GEMM, OP_HALT, OP_LOAD, OP_REQ, OP_RMS,
                            OP_ROPE, OP_SMAX, OP_SWIGLU, Insn, encode_program)

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


def both(rtl):
    return [rtl, GoldenAccelerator(rtl.config)]


BAD = [
    ("unknown opcode", Insn(0x77), ERR_OPCODE),
    ("zero opcode (uninitialised memory)", Insn(0x00), ERR_OPCODE),
    ("zero rows", Insn(OP_REQ, rows=0, blocks=1), ERR_FIELD),
    ("shift > 62", Insn(OP_REQ, rows=1, blocks=1, shift0=63), ERR_FIELD),
    ("shift1 > 62", Insn(OP_SWIGLU, rows=1, blocks=1, shift1=63), ERR_FIELD),
    ("odd head_dim", Insn(OP_ROPE, rows=1, blocks=1, aux=7, src2=1), ERR_FIELD),
    ("GEMM past accumulator end", Insn(OP_GEMM, rows=16, blocks=1, aux=1, dst=16380), ERR_RANGE),
    ("LOAD past DRAM end", Insn(OP_LOAD, flags=MEM_A, rows=16, dram=2 * 1024 * 1024 - 16), ERR_RANGE),
    ("LOAD misaligned DRAM", Insn(OP_LOAD, flags=MEM_A, rows=1, dram=8), ERR_RANGE),
    ("LOAD into SRAM past end", Insn(OP_LOAD, flags=MEM_ACC, rows=2, dst=16383), ERR_RANGE),
    # per-column scaling (COLSCALE flags) only on ops whose ACC operand is a weight GEMM's
    ("column scale on RMS", Insn(OP_RMS, flags=COLSCALE_A, rows=1, blocks=1), ERR_FIELD),
    ("column scale on SMAX", Insn(OP_SMAX, flags=COLSCALE_A, rows=1, blocks=1), ERR_FIELD),
    ("second column scale on REQ", Insn(OP_REQ, flags=COLSCALE_B, rows=1, blocks=1), ERR_FIELD),
    ("table address without its flag", Insn(OP_REQ, rows=1, blocks=1, cs0=4), ERR_FIELD),
    ("table address on a GEMM", Insn(OP_GEMM, rows=1, blocks=1, aux=1, cs1=4), ERR_FIELD),
    ("column-scale table past W end",
     Insn(OP_SWIGLU, flags=COLSCALE_A | COLSCALE_B, rows=1, blocks=3, cs1=65536 - 5), ERR_RANGE),
]


@pytest.mark.parametrize("name,insn,code", BAD, ids=[b[0] for b in BAD])
def test_malformed_instruction_raises_with_code_and_pc(rtl, name, insn, code):
    good = Insn(OP_REQ, rows=1, blocks=1, dst=0, src0=0, mult0=1)
    for dev in both(rtl):
        dev.write_program(encode_program([good, good, insn, Insn(OP_HALT)]))
        with pytest.raises(AcceleratorError) as e:
            dev.run(100_000)
        assert e.value.code == code and e.value.pc == 2, f"{type(dev).__name__}: {e.value}"
    # the accelerator is usable again afterwards: nothing hangs
    rtl.write_program(encode_program([good, Insn(OP_HALT)]))
    assert rtl.run(100_000).instructions == 2


def test_reserved_bits_are_rejected(rtl):
    words = encode_program([Insn(OP_HALT)])
    words[0, 7] = 1
    for dev in both(rtl):
        dev.write_program(words)
        with pytest.raises(AcceleratorError) as e:
            dev.run(1000)
        assert e.value.code == ERR_FIELD and e.value.pc == 0


def test_running_off_the_end_of_instruction_memory(rtl):
    last = rtl.config.imem_depth - 1
    for dev in both(rtl):
        dev.write_program(encode_program([Insn(OP_REQ, rows=1, blocks=1, mult0=1)]), start_pc=last)
        with pytest.raises(AcceleratorError) as e:
            dev.run(100_000)
        assert e.value.code == ERR_PC and e.value.pc == rtl.config.imem_depth


def test_cycle_limit_names_the_pc(rtl):
    big = Insn(OP_GEMM, rows=4000, blocks=4, aux=4, dst=0, src0=0, src1=0)  # ~64k cycles
    rtl.write_program(encode_program([Insn(OP_REQ, rows=1, blocks=1, mult0=1), big,
                                      Insn(OP_HALT)]))
    # PC names the instruction waiting to issue: the HALT (pc 2), held until the GEMM retires
    with pytest.raises(CycleLimitError, match="last pc = 2") as e:
        rtl.run(max_cycles=2000)
    assert e.value.pc == 2
    rtl.write_program(encode_program([Insn(OP_HALT)]))
    assert rtl.run(1000).instructions == 1  # reset after the timeout: usable again


@pytest.mark.parametrize("addr,nbytes", [(-4, 4), (2 * 1024 * 1024 - 4, 8), (3, 4), (0, 6),
                                         (IMEM_BASE - 4, 4), (IMEM_BASE + 1024 * 32, 4), (2**40, 4)])
def test_out_of_range_host_access_raises(rtl, addr, nbytes):
    for dev in both(rtl):
        with pytest.raises(AddressError):
            dev.write_mem(addr, np.zeros(nbytes, dtype=np.uint8))
        with pytest.raises(AddressError):
            dev.read_mem(addr, nbytes)


def test_register_and_program_shape_checks(rtl):
    with pytest.raises(ValueError, match="register"):
        rtl.read_reg(300)
    with pytest.raises(ValueError, match="uint32"):
        rtl.write_program(np.zeros((3, 7), dtype=np.uint32))
    with pytest.raises(ValueError, match="does not fit"):
        Insn(OP_REQ, rows=70000).encode()


def test_fst_trace_is_written(rtl, tmp_path):
    path = tmp_path / "wave.fst"
    rtl.trace(path)
    rtl.write_program(encode_program([Insn(OP_REQ, rows=2, blocks=1, mult0=1), Insn(OP_HALT)]))
    rtl.run(10_000)
    rtl.close_trace()
    assert path.stat().st_size > 100
    assert path.read_bytes()[:1] in (b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\xfe")
