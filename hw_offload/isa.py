"""Instruction encoding, register map and error codes of the accelerator (see ISA.md).

One instruction is 256 bits = eight little-endian uint32 words. Both the RTL controller
(rtl/accel_pkg.sv's insn_t, checked by rtl/insn_decode.sv) and the golden model (golden.py) decode
exactly this layout: ``INSN_FIELDS``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# ---- Hardware constants: rtl/accel_pkg.sv is the source; tests/test_hw_constants.py holds
# every OP_, ERR_, REG_, MEM_, GEMM_ and COLSCALE_ value here (and IMEM_BASE, INSN_BYTES) to it.
# ---- opcodes ----
OP_LOAD, OP_STORE, OP_HALT = 0x01, 0x02, 0x0F
OP_GEMM = 0x10
OP_REQ, OP_RMS, OP_ROPE, OP_SMAX, OP_SWIGLU, OP_RESADD = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25
OPCODE_NAMES = {OP_LOAD: "LOAD", OP_STORE: "STORE", OP_HALT: "HALT", OP_GEMM: "GEMM",
                OP_REQ: "REQ", OP_RMS: "RMS", OP_ROPE: "ROPE", OP_SMAX: "SMAX",
                OP_SWIGLU: "SWIGLU", OP_RESADD: "RESADD"}
VECTOR_OPS = (OP_REQ, OP_RMS, OP_ROPE, OP_SMAX, OP_SWIGLU, OP_RESADD)

# ---- LOAD/STORE memory selector (flags[1:0]) ----
MEM_A, MEM_W, MEM_ACC = 0, 1, 2
# ---- GEMM flags ----
GEMM_ACCUMULATE, GEMM_B_FROM_A, GEMM_TRANSPOSE_B = 1, 2, 4
# ---- vector-op flags: per-column scaling of accumulator operands (ISA.md, "Column scales") ----
# COLSCALE_A: the first ACC operand (REQ/ROPE/SWIGLU src0, RESADD src1), table at cs0.
# COLSCALE_B: SWIGLU's second ACC operand (src1, "up"), table at cs1.
COLSCALE_A, COLSCALE_B = 1, 2
# the flags each vector op accepts (RMS and SMAX read no weight-GEMM output: none)
COLSCALE_FLAGS = {OP_REQ: COLSCALE_A, OP_ROPE: COLSCALE_A, OP_RESADD: COLSCALE_A,
                  OP_SWIGLU: COLSCALE_A | COLSCALE_B, OP_RMS: 0, OP_SMAX: 0}
CS_SHIFT = 15   # x' = rshift_round(x * m_col, 15): a multiplier of 2^15 is 1.0

# ---- error codes (register ERR_CODE) ----
ERR_NONE, ERR_OPCODE, ERR_FIELD, ERR_RANGE, ERR_PC = 0, 1, 2, 3, 4
ERROR_NAMES = {ERR_OPCODE: "unknown opcode", ERR_FIELD: "bad field (reserved bit, zero size, "
               "bad flags/shift/head_dim)", ERR_RANGE: "address range out of bounds or DRAM "
               "address not line-aligned", ERR_PC: "pc ran past the end of instruction memory"}

# ---- registers (32-bit, index on the register port) ----
REG_CTRL, REG_STATUS, REG_ERR_CODE, REG_PC, REG_START_PC, REG_ERR_PC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
REG_N, REG_A_ROWS, REG_W_ROWS, REG_ACC_ROWS, REG_DRAM_BYTES, REG_IMEM_DEPTH = range(0x06, 0x0C)
COUNTER_REGS = {"cycles": 0x10, "array_busy": 0x12, "vector_busy": 0x14, "dma_busy": 0x16,
                "stall": 0x18, "bytes_in": 0x1A, "bytes_out": 0x1C, "instructions": 0x1E,
                "overlap": 0x20, "all_busy": 0x22}
IMEM_BASE = 0x8000_0000
INSN_WORDS = 8
INSN_BYTES = 32


# Every SRAM is split into this many equal banks by the top two bits of its row address; each
# bank is a synchronous SRAM with one read and one write port (ISA.md, "Memories").
SRAM_BANKS = 4


@dataclass(frozen=True)
class HwConfig:
    """Sizes of one accelerator build (the RTL reports them in registers 0x06..0x0B)."""

    n: int = 16
    a_rows: int = 16384
    w_rows: int = 65536
    acc_rows: int = 16384
    dram_bytes: int = 2 * 1024 * 1024
    imem_depth: int = 1024

    def rows_of(self, mem: int) -> int:
        return {MEM_A: self.a_rows, MEM_W: self.w_rows, MEM_ACC: self.acc_rows}[mem]

    def bank_rows(self, mem: int) -> int:
        """Rows in one bank of SRAM ``mem``: each SRAM is ``SRAM_BANKS`` equal banks, bank
        ``row // bank_rows`` (ISA.md, "Memories")."""
        return self.rows_of(mem) // SRAM_BANKS


# ---- instruction format: (field, lowest bit in the 256-bit word, width). rtl/accel_pkg.sv's
# packed struct insn_t is the source (tests/test_hw_constants.py holds this table to it);
# the rsv* fields are reserved and must be 0.
INSN_FIELDS = (
    ("op", 0, 8), ("flags", 8, 8), ("rsv0", 16, 16),
    ("rows", 32, 16), ("blocks", 48, 8), ("aux", 56, 8),
    ("dst", 64, 16), ("src0", 80, 16),
    ("src1", 96, 16), ("src2", 112, 16),
    ("dram", 128, 32),
    ("mult0", 160, 16), ("shift0", 176, 8), ("rsv5", 184, 8),
    ("mult1", 192, 16), ("shift1", 208, 8), ("rsv6", 216, 8),
    ("cs0", 224, 16), ("cs1", 240, 16),
)
RESERVED_FIELDS = ("rsv0", "rsv5", "rsv6")


@dataclass(frozen=True)
class Insn:
    """One decoded instruction; field meaning depends on ``op`` (ISA.md, "Instructions")."""

    op: int
    flags: int = 0
    rows: int = 0
    blocks: int = 0
    aux: int = 0
    dst: int = 0
    src0: int = 0
    src1: int = 0
    src2: int = 0
    dram: int = 0
    mult0: int = 0
    shift0: int = 0
    mult1: int = 0
    shift1: int = 0
    cs0: int = 0       # W row of the column-scale table of the first ACC operand (COLSCALE_A)
    cs1: int = 0       # W row of the column-scale table of SWIGLU's up operand (COLSCALE_B)
    reserved: int = 0  # OR of every reserved field; must be 0

    _WIDTHS = {name: bits for name, _, bits in INSN_FIELDS if name not in RESERVED_FIELDS}

    def encode(self) -> np.ndarray:
        """-> uint32[8]. Raises ValueError naming a field that does not fit its width."""
        for name, bits in self._WIDTHS.items():
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not 0 <= int(v) < (1 << bits):
                raise ValueError(f"instruction field {name}={v!r} does not fit in {bits} unsigned bits")
        word = 0
        for name, lo, _ in INSN_FIELDS:
            if name not in RESERVED_FIELDS:
                word |= int(getattr(self, name)) << lo
        return np.array([(word >> (32 * k)) & 0xFFFFFFFF for k in range(INSN_WORDS)],
                        dtype=np.uint32)

    @staticmethod
    def decode(words) -> "Insn":
        word = 0
        for k, w in enumerate(np.asarray(words, dtype=np.uint32)):
            word |= int(w) << (32 * k)
        f = {name: (word >> lo) & ((1 << bits) - 1) for name, lo, bits in INSN_FIELDS}
        reserved = 0
        for name in RESERVED_FIELDS:
            reserved |= f.pop(name)
        return Insn(**f, reserved=reserved)

    def replace(self, **kw) -> "Insn":
        return dataclasses.replace(self, **kw)

    def __str__(self) -> str:
        name = OPCODE_NAMES.get(self.op, f"0x{self.op:02x}")
        fields = ", ".join(f"{k}={getattr(self, k)}" for k in self._WIDTHS
                           if k != "op" and getattr(self, k))
        return f"{name}({fields})"


def encode_program(insns: list[Insn]) -> np.ndarray:
    """-> uint32[len(insns), 8]."""
    if not insns:
        raise ValueError("a program needs at least one instruction (end it with HALT)")
    return np.stack([i.encode() for i in insns])


def rope_rows_per_position(head_dim: int, n: int) -> int:
    """Weight-SRAM rows one position's table takes: head_dim/2 entries of {cos16, sin16}."""
    return (2 * head_dim + n - 1) // n


def colscale_rows(blocks: int) -> int:
    """Weight-SRAM rows of a column-scale table for ``blocks`` column blocks: one uint16 per
    column, 2N bytes per block, so 2 rows of N bytes per block whatever N is."""
    return 2 * blocks
