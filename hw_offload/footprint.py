"""What each instruction reads and writes, for the overlapping controller's hazard checks.

The controller issues instructions in program order but lets the DMA engine, the GEMM unit and
the vector unit work at once (ISA.md, "Overlap"). An instruction waits in DECODE while an
instruction still in flight on another unit *conflicts* with it:

* **data hazards**: for some memory, one of the two writes rows the other reads or writes
  (read-after-write, write-after-read, write-after-write). Each instruction is summarised per
  memory by one bounding row range of its reads and one of its writes (``Footprint``), so a
  hazard can be reported where the exact row sets do not meet (a wait, never a wrong result);
* **structural hazards**: both claim the same SRAM bank port. Every SRAM is ``SRAM_BANKS``
  equal banks (bank = row // ``HwConfig.bank_rows``), each with one read and one write port;
  an instruction claims the read port of every bank its bounding read range touches and the
  write port of every bank its bounding write range touches (``read_banks`` / ``write_banks``,
  bit b = bank b). A unit's reads and writes always fall inside its claims, so the banks route
  each request to its bank without arbitration.

The RTL computes the same ranges in ``rtl/insn_decode.sv`` (held to this module by the fuzzer,
which compares every counter of random programs with ``cycle_model.run_cycles``).
Rows are half-open ``(lo, hi)`` ranges of SRAM row numbers; a range with ``lo == hi`` is empty.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .isa import (COLSCALE_A, COLSCALE_B, GEMM_ACCUMULATE, GEMM_B_FROM_A, MEM_A, MEM_ACC, MEM_W,
                  OP_GEMM, OP_HALT, OP_LOAD, OP_REQ, OP_RESADD, OP_RMS, OP_ROPE, OP_SMAX, OP_STORE,
                  OP_SWIGLU, HwConfig, Insn, colscale_rows, rope_rows_per_position)

MEMS = (MEM_A, MEM_W, MEM_ACC)
EMPTY = (0, 0)

UNIT_DMA, UNIT_GEMM, UNIT_VECTOR = "dma", "gemm", "vector"


def _span(*ranges: tuple[int, int]) -> tuple[int, int]:
    """The bounding range of the non-empty ``ranges`` (EMPTY if none)."""
    live = [r for r in ranges if r[1] > r[0]]
    if not live:
        return EMPTY
    return min(lo for lo, _ in live), max(hi for _, hi in live)


def _meets(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < a[1] and b[0] < b[1] and a[0] < b[1] and b[0] < a[1]


def bank_mask(rows: tuple[int, int], bank_rows: int) -> int:
    """Bit b set for every bank b (of ``bank_rows`` rows each) that the half-open row range
    ``rows`` touches; 0 for an empty range."""
    lo, hi = rows
    if hi <= lo:
        return 0
    first, last = lo // bank_rows, (hi - 1) // bank_rows
    return ((1 << (last + 1)) - 1) & ~((1 << first) - 1)


@dataclass(frozen=True)
class Footprint:
    """One instruction's unit, bounding read / write row range per memory, and the bank ports
    those ranges claim (per memory, bit b = bank b)."""

    unit: str | None                               # None: HALT (no unit)
    reads: dict[int, tuple[int, int]] = field(default_factory=dict)
    writes: dict[int, tuple[int, int]] = field(default_factory=dict)
    read_banks: dict[int, int] = field(default_factory=dict)
    write_banks: dict[int, int] = field(default_factory=dict)

    def conflicts(self, other: "Footprint") -> bool:
        """True if ``self`` must wait for ``other`` (in flight on another unit) to retire."""
        return self.shares_a_bank_port(other) or self.shares_rows(other)

    def shares_a_bank_port(self, other: "Footprint") -> bool:
        """A structural hazard: both claim the read port, or both the write port, of a bank."""
        return any(self.read_banks.get(m, 0) & other.read_banks.get(m, 0)
                   or self.write_banks.get(m, 0) & other.write_banks.get(m, 0) for m in MEMS)

    def shares_rows(self, other: "Footprint") -> bool:
        """A data hazard: in some memory, one writes rows the other reads or writes."""
        for m in MEMS:
            mine_r, mine_w = self.reads.get(m, EMPTY), self.writes.get(m, EMPTY)
            theirs_r, theirs_w = other.reads.get(m, EMPTY), other.writes.get(m, EMPTY)
            if (_meets(theirs_w, mine_r) or _meets(theirs_w, mine_w)
                    or _meets(theirs_r, mine_w)):
                return True
        return False


def _colscale_tables(i: Insn) -> tuple[int, int]:
    """Bounding W range of the column-scale tables ``i`` reads (ISA.md, "Column scales")."""
    t = colscale_rows(i.blocks)
    cs0 = (i.cs0, i.cs0 + t) if i.flags & COLSCALE_A else EMPTY
    cs1 = (i.cs1, i.cs1 + t) if i.flags & COLSCALE_B else EMPTY
    return _span(cs0, cs1)


def footprint(i: Insn, cfg: HwConfig) -> Footprint:
    """The footprint of one *valid* instruction (decode has range-checked it) on build ``cfg``:
    its ranges (``_ranges``) and the bank ports they claim."""
    unit, reads, writes = _ranges(i, cfg.n)
    return Footprint(unit, reads, writes,
                     read_banks={m: bank_mask(r, cfg.bank_rows(m)) for m, r in reads.items()},
                     write_banks={m: bank_mask(r, cfg.bank_rows(m)) for m, r in writes.items()})


Ranges = dict[int, tuple[int, int]]


def _ranges(i: Insn, n: int) -> tuple[str | None, Ranges, Ranges]:
    """(unit, bounding read range per memory, bounding write range per memory) of ``i`` at
    array size ``n``."""
    rb = i.rows * i.blocks
    if i.op == OP_HALT:
        return None, {}, {}
    if i.op == OP_LOAD:
        return UNIT_DMA, {}, {i.flags & 3: (i.dst, i.dst + i.rows)}
    if i.op == OP_STORE:
        return UNIT_DMA, {i.flags & 3: (i.src0, i.src0 + i.rows)}, {}
    if i.op == OP_GEMM:
        a_rows = (i.src0, i.src0 + rb)
        b_rows = (i.src1, i.src1 + i.blocks * n * i.aux)
        c_rows = (i.dst, i.dst + i.rows * i.aux)
        if i.flags & GEMM_B_FROM_A:
            reads = {MEM_A: _span(a_rows, b_rows)}
        else:
            reads = {MEM_A: a_rows, MEM_W: b_rows}
        # it reads its old C rows back when accumulating and for every K block after the first
        # (the array's partial sums are added to them); the write range's hazards cover it, but
        # the read claims that ACC bank's read port
        if i.flags & GEMM_ACCUMULATE or i.blocks > 1:
            reads[MEM_ACC] = c_rows
        return UNIT_GEMM, reads, {MEM_ACC: c_rows}
    if i.op in (OP_REQ, OP_RMS, OP_ROPE, OP_SMAX, OP_SWIGLU, OP_RESADD):
        reads: Ranges = {}
        first = (i.src0, i.src0 + rb)
        if i.op in (OP_REQ, OP_SMAX):
            reads[MEM_ACC] = first
        elif i.op == OP_RMS:
            reads[MEM_A] = first
            reads[MEM_W] = (i.src1, i.src1 + i.blocks)            # gain: one W row per block
        elif i.op == OP_ROPE:
            reads[MEM_ACC] = first
            table = rope_rows_per_position(i.aux, n) * i.src2 * i.rows
            reads[MEM_W] = (i.src1, i.src1 + table)
        elif i.op == OP_SWIGLU:
            reads[MEM_ACC] = _span(first, (i.src1, i.src1 + rb))
        else:                                                      # RESADD
            reads[MEM_A] = first
            reads[MEM_ACC] = (i.src1, i.src1 + rb)
        tables = _colscale_tables(i)
        if tables != EMPTY:
            reads[MEM_W] = _span(reads.get(MEM_W, EMPTY), tables)
        return UNIT_VECTOR, reads, {MEM_A: (i.dst, i.dst + rb)}
    raise ValueError(f"no footprint for opcode 0x{i.op:02x}")
