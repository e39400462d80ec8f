"""Differential random-program fuzzer: the RTL (driver.Accelerator) against the golden model.

Each program is drawn from one integer seed and is reproducible from it alone:

* a random DRAM image (boundary values: int8 -128/127/0, int32 extremes) in two DRAM windows,
  one at address 0 and one ending at the last DRAM byte;
* a prologue that LOADs every SRAM window (per SRAM: rows at its start, in bank 0; rows astride
  the boundary of banks 1 and 2; rows at its end, in bank 3), so both devices start from the
  same state whatever ran before;
* a body of random LEGAL instructions (every opcode, every flag, sizes around N, extents that
  end exactly at an SRAM or DRAM end, shifts 0 and 62, multipliers 0 and 65535, ...), about
  half of them placed against the one before (``Generator.related``): an instruction for
  another unit whose rows in some SRAM overlap, or end exactly where they begin, or begin
  exactly where they end, rows the previous one reads or writes (read-after-write,
  write-after-read, write-after-write, and the disjoint neighbours that must not wait), and a
  LOAD of the DRAM bytes a STORE just wrote; and, as structural hazards, instructions that
  claim a bank port the previous one claims without sharing a row with it (same bank, other
  rows) and near misses in the neighbouring bank. The overlapping controller runs these at
  once or holds them apart (ISA.md "Overlap"): a missed hazard changes the data, a needless
  wait the cycle counters;
* a tail: HALT, or one malformed instruction (shift 63+, reserved bits, extents one past an
  end, zero sizes, bad flags, stray table addresses, unknown opcodes, misaligned DRAM), or no
  HALT at all at the end of instruction memory (pc runs past the end).

After the run both devices must agree on: the exception (code and pc) or its absence, the pc
register, every counter (instructions and DMA bytes against golden; cycles, array / vector /
DMA busy, stall, overlap and all_busy against cycle_model), every byte of both DRAM windows, and every SRAM window
(dumped to DRAM by a second program: STORE for A and ACC, an identity GEMM for W).

    python -m hw_offload.fuzz --programs 500 --seed 7      # prints the seed of any mismatch
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .cycle_model import run_cycles
from .errors import AcceleratorError
from .footprint import UNIT_DMA, UNIT_GEMM, UNIT_VECTOR, Footprint, footprint
from .golden import GoldenAccelerator
from .isa import (COLSCALE_FLAGS, MEM_A, MEM_ACC, MEM_W, OP_GEMM, OP_HALT, OP_LOAD,
                  OP_REQ, OP_RESADD, OP_RMS, OP_ROPE, OP_SMAX, OP_STORE, OP_SWIGLU, OPCODE_NAMES,
                  REG_PC, VECTOR_OPS, HwConfig, Insn, colscale_rows, encode_program,
                  rope_rows_per_position)

WIN_ROWS = 64            # rows of each SRAM window (``windows``)
DRAM_WIN = 32 * 1024     # bytes of each DRAM window (one at 0, one ending at the last byte)
MULTS = (0, 1, 2, 255, 256, 32767, 32768, 65535)
SHIFTS = (0, 1, 2, 14, 15, 16, 31, 32, 61, 62)


def windows(mem_rows: int) -> tuple[int, int, int]:
    """First rows of the SRAM windows of a memory of ``mem_rows`` rows (4 banks,
    isa.SRAM_BANKS): at row 0 (bank 0), astride the boundary of banks 1 and 2, and ending at
    the last row (bank 3)."""
    assert mem_rows >= 4 * WIN_ROWS, mem_rows
    return 0, mem_rows // 2 - WIN_ROWS // 2, mem_rows - WIN_ROWS


def env_seed(default: int) -> int:
    """HW_TEST_SEED replays a run; otherwise ``default`` (tests pass a fixed one)."""
    env = os.environ.get("HW_TEST_SEED")
    return int(env) if env else default


@dataclass
class Program:
    """One fuzz case: instruction words placed at ``start_pc`` and the DRAM windows' contents."""

    seed: int
    words: np.ndarray                 # uint32[n, 8]
    start_pc: int
    dram_lo: np.ndarray               # uint8[DRAM_WIN] at address 0
    dram_hi: np.ndarray               # uint8[DRAM_WIN] ending at the last DRAM byte
    listing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = "\n".join(f"  pc {self.start_pc + k}: {s}" for k, s in enumerate(self.listing))
        return f"fuzz program seed={self.seed} start_pc={self.start_pc}\n{lines}"


class Generator:
    """Draws random legal instructions inside the windows of one accelerator configuration."""

    def __init__(self, cfg: HwConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.n = cfg.n

    # ---- random helpers ----
    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def size(self, hi: int) -> int:
        """1..hi, biased to 1, N-1, N, N+1, 2N+1 and hi."""
        n = self.n
        special = [v for v in (1, n - 1, n, n + 1, 2 * n + 1, hi) if 1 <= v <= hi]
        return self.pick(special) if self.chance(0.5) else int(self.rng.integers(1, hi + 1))

    def mult(self) -> int:
        return self.pick(MULTS) if self.chance(0.5) else int(self.rng.integers(0, 1 << 16))

    def shift(self) -> int:
        return self.pick(SHIFTS) if self.chance(0.6) else int(self.rng.integers(0, 63))

    def base(self, mem_rows: int, extent: int) -> int:
        """A row with [row, row+extent) inside one window, often flush with the window's (or
        the SRAM's) first or last row, or in the middle window with the bank boundary."""
        assert 1 <= extent <= WIN_ROWS, extent
        lo = self.pick(windows(mem_rows))
        r = self.rng.random()
        if lo == windows(mem_rows)[1] and r < 0.4 and extent <= WIN_ROWS // 2:
            # ends or begins at the bank boundary in the window's middle
            return mem_rows // 2 - extent if r < 0.2 else mem_rows // 2
        if r < 0.3:
            return lo + WIN_ROWS - extent
        if r < 0.5:
            return lo
        return lo + int(self.rng.integers(0, WIN_ROWS - extent + 1))

    def dram(self, nbytes: int) -> int:
        lo = 0 if self.chance(0.5) else self.cfg.dram_bytes - DRAM_WIN
        lines = (DRAM_WIN - nbytes) // self.n
        k = lines if self.chance(0.3) else (0 if self.chance(0.3) else int(self.rng.integers(0, lines + 1)))
        return lo + k * self.n

    # ---- legal instructions ----
    def dma(self, mem: int | None = None, store: bool | None = None) -> Insn:
        """A LOAD or STORE (``store``; random if None) of ``mem`` (random if None)."""
        if store is None:
            store = mem != MEM_W and self.chance(0.5)
        if mem is None:
            mem = self.pick((MEM_A, MEM_ACC) if store else (MEM_A, MEM_W, MEM_ACC))
        rows = self.size(WIN_ROWS)
        nbytes = rows * self.n * (4 if mem == MEM_ACC else 1)
        row = self.base(self.cfg.rows_of(mem), rows)
        addr = self.dram(nbytes)
        if store:
            return Insn(OP_STORE, flags=mem, rows=rows, src0=row, dram=addr)
        return Insn(OP_LOAD, flags=mem, rows=rows, dst=row, dram=addr)

    def gemm(self) -> Insn:
        n, cfg = self.n, self.cfg
        kb = int(self.rng.integers(1, 4))
        nb = int(self.rng.integers(1, 5 // kb + 1)) if kb < 4 else 1
        nb = min(nb, WIN_ROWS // (kb * n))
        m = self.size(WIN_ROWS // max(kb, nb))
        flags = int(self.rng.integers(0, 8))
        b_rows = cfg.a_rows if flags & 2 else cfg.w_rows
        return Insn(OP_GEMM, flags=flags, rows=m, blocks=kb, aux=nb,
                    dst=self.base(cfg.acc_rows, m * nb), src0=self.base(cfg.a_rows, m * kb),
                    src1=self.base(b_rows, kb * nb * n))

    def vector(self, op: int | None = None) -> Insn:
        cfg, n = self.cfg, self.n
        op = op if op is not None else self.pick(VECTOR_OPS)
        blocks = int(self.rng.integers(1, 4))
        rows = self.size(WIN_ROWS // blocks)
        rb = rows * blocks
        i = Insn(op, rows=rows, blocks=blocks, dst=self.base(cfg.a_rows, rb),
                 mult0=self.mult(), shift0=self.shift())
        ok = COLSCALE_FLAGS[op]
        flags = int(self.rng.integers(0, 4)) & ok
        tables = {}
        if flags & 1:
            tables["cs0"] = self.base(cfg.w_rows, colscale_rows(blocks))
        if flags & 2:
            tables["cs1"] = self.base(cfg.w_rows, colscale_rows(blocks))
        i = i.replace(flags=flags, **tables)
        if op == OP_REQ:
            return i.replace(src0=self.base(cfg.acc_rows, rb))
        if op == OP_RMS:
            return i.replace(src0=self.a_source(i.dst, rb), src1=self.base(cfg.w_rows, blocks))
        if op == OP_ROPE:
            aux = 2 * int(self.rng.integers(1, n // 2 + 1))
            tr = rope_rows_per_position(aux, n)
            bph = int(self.rng.integers(1, 4))
            rows = min(rows, WIN_ROWS // (bph * tr))
            return i.replace(rows=rows, aux=aux, src2=bph, src0=self.base(cfg.acc_rows, rows * blocks),
                             dst=self.base(cfg.a_rows, rows * blocks),
                             src1=self.base(cfg.w_rows, rows * bph * tr))
        if op == OP_SMAX:
            q_off = self.pick((0, 1, n - 1, n, 65535)) if self.chance(0.5) else int(self.rng.integers(0, 1 << 16))
            return i.replace(src0=self.base(cfg.acc_rows, rb), src2=q_off)
        if op == OP_SWIGLU:
            return i.replace(src0=self.base(cfg.acc_rows, rb), src1=self.base(cfg.acc_rows, rb),
                             mult1=self.mult(), shift1=self.shift())
        assert op == OP_RESADD
        return i.replace(src0=self.a_source(i.dst, rb), src1=self.base(cfg.acc_rows, rb),
                         mult1=self.mult(), shift1=self.shift())

    def a_source(self, dst: int, extent: int) -> int:
        """An A-SRAM source for a vector op writing [dst, dst+extent): in place or disjoint
        (ISA.md: other partial overlaps are undefined, so they are not legal programs)."""
        if self.chance(0.3):
            return dst
        while True:
            src = self.base(self.cfg.a_rows, extent)
            if src == dst or src + extent <= dst or dst + extent <= src:
                return src

    def legal(self) -> Insn:
        r = self.rng.random()
        return self.dma() if r < 0.25 else self.gemm() if r < 0.55 else self.vector()

    def trio(self) -> list[Insn]:
        """A weight LOAD long enough for a GEMM and a vector op to start under it, the three
        drawn (a few tries) so that none conflicts with another: all three units at once."""
        for _ in range(10):
            rows = self.pick((WIN_ROWS // 2, WIN_ROWS))
            load = Insn(OP_LOAD, flags=MEM_W, rows=rows, dst=self.base(self.cfg.w_rows, rows),
                        dram=self.dram(rows * self.n))
            trio = [load, self.gemm(), self.vector()]
            fps = [footprint(i, self.cfg) for i in trio]
            if not any(a.conflicts(b) for k, a in enumerate(fps) for b in fps[:k]):
                break
        return trio

    # ---- instructions placed against the previous one (hazards and near misses) ----
    def of_unit(self, unit: str) -> Insn:
        return {UNIT_DMA: self.dma, UNIT_GEMM: self.gemm, UNIT_VECTOR: self.vector}[unit]()

    def related(self, prev: Insn) -> Insn:
        """A legal instruction for another unit than ``prev``'s whose rows in one SRAM overlap,
        or adjoin (end where they begin / begin where they end), rows ``prev`` reads or
        writes; after a STORE, sometimes a LOAD of the bytes it wrote. Falls back to a random
        legal instruction when no placement fits the SRAM windows."""
        n = self.n
        if prev.op == OP_STORE and self.chance(0.3):
            mem = self.pick((MEM_A, MEM_W, MEM_ACC))
            per_row = n * (4 if mem == MEM_ACC else 1)
            nbytes = prev.rows * n * (4 if prev.flags & 3 == MEM_ACC else 1)
            rows = max(1, min(WIN_ROWS, nbytes // per_row))
            return Insn(OP_LOAD, flags=mem, rows=rows, dst=self.base(self.cfg.rows_of(mem), rows),
                        dram=prev.dram)
        fp = footprint(prev, self.cfg)
        # (memory, rows, whether prev writes them): a hazard needs a write on one side, so
        # rows prev only reads get a writer (W's only writer is a LOAD)
        touched = ([(m, r, False) for m, r in fp.reads.items()]
                   + [(m, r, True) for m, r in fp.writes.items()])
        others = [u for u in (UNIT_DMA, UNIT_GEMM, UNIT_VECTOR) if u != fp.unit]
        for _ in range(20):
            mem, (lo, hi), prev_writes = self.pick(touched)
            unit = self.pick(others)
            if unit == UNIT_DMA:
                cand = self.dma(mem, store=None if prev_writes and mem != MEM_W else False)
            elif unit == UNIT_VECTOR and mem == MEM_W:   # ops with W operands or tables
                cand = self.vector(self.pick((OP_RMS, OP_ROPE, OP_SWIGLU, OP_REQ)))
            else:
                cand = self.of_unit(unit)
            fields = [(f, length) for f, m, length, writes in _row_fields(cand, n)
                      if m == mem and (writes or prev_writes)]
            if not fields:
                continue
            f, length = self.pick(fields)
            how = self.rng.random()
            if how < 0.4:                        # overlapping
                b = int(self.rng.integers(lo - length + 1, hi))
            elif how < 0.6:                      # begins where prev's rows end
                b = hi
            elif how < 0.8:                      # ends where prev's rows begin
                b = lo - length
            else:
                return self.bank_neighbour(fp, mem, (lo, hi), prev_writes, unit,
                                           same_bank=how < 0.9) or self.legal()
            cand = cand.replace(**{f: b})
            if _in_windows(cand, self.cfg) and _a_sources_ok(cand, n):
                return cand
        return self.legal()

    def bank_neighbour(self, fp: Footprint, mem: int, rows: tuple[int, int], writes: bool,
                       unit: str, same_bank: bool) -> Insn | None:
        """An instruction for ``unit`` that reads (``writes``: writes) rows of ``mem`` in the
        bank of ``rows`` (``same_bank``: a structural hazard, the one bank port both claim)
        or in the neighbouring bank (a near miss), sharing no row with ``prev`` in any
        memory with ``fp``, the previous instruction's footprint. None if no placement fits
        the windows (a few tries)."""
        n, cfg = self.n, self.cfg
        bank_rows = cfg.bank_rows(mem)
        lo, hi = rows
        for _ in range(10):
            if unit == UNIT_DMA:
                if writes or mem == MEM_W:
                    cand = self.dma(mem, store=False)
                else:
                    cand = self.dma(mem, store=True)
            elif unit == UNIT_VECTOR and mem == MEM_W:
                cand = self.vector(self.pick((OP_RMS, OP_ROPE, OP_SWIGLU, OP_REQ)))
            else:
                cand = self.of_unit(unit)
            fields = [(f, length) for f, m, length, w in _row_fields(cand, n)
                      if m == mem and w == writes and length <= WIN_ROWS]
            if not fields:
                continue
            f, length = self.pick(fields)
            if same_bank:                        # other rows of the same window and bank
                win = max(w for w in windows(cfg.rows_of(mem)) if w <= lo)
                b = int(self.rng.integers(win, win + WIN_ROWS - length + 1))
            elif hi <= 2 * bank_rows and lo >= 2 * bank_rows - WIN_ROWS // 2:
                b = 2 * bank_rows                # prev in bank 1, the candidate in bank 2
            elif lo >= 2 * bank_rows and hi <= 2 * bank_rows + WIN_ROWS // 2:
                b = 2 * bank_rows - length       # prev in bank 2, the candidate in bank 1
            else:
                return None
            cand = cand.replace(**{f: b})
            if not (_in_windows(cand, cfg) and _a_sources_ok(cand, n)):
                continue
            mine = footprint(cand, cfg)
            if mine.shares_rows(fp):
                continue
            if same_bank and not (mine.read_banks.get(mem, 0) & fp.read_banks.get(mem, 0)
                                  if not writes else
                                  mine.write_banks.get(mem, 0) & fp.write_banks.get(mem, 0)):
                continue
            return cand
        return None

    def _one_past_end(self, i: Insn) -> Insn | None:
        """``i`` moved so that one of its ranges ends one row (or DRAM line) past the end of
        its memory; None when that start does not fit its 16-bit field."""
        cfg, n = self.cfg, self.n
        if i.op in (OP_LOAD, OP_STORE):
            mem = i.flags & 3
            if self.chance(0.5):
                row = cfg.rows_of(mem) - i.rows + 1
                field, value = ("dst" if i.op == OP_LOAD else "src0"), row
            else:
                field, value = "dram", cfg.dram_bytes - i.rows * n * (4 if mem == MEM_ACC else 1) + n
        elif i.op == OP_GEMM:
            field = self.pick(("dst", "src0", "src1"))
            size = {"dst": cfg.acc_rows, "src0": cfg.a_rows,
                    "src1": cfg.a_rows if i.flags & 2 else cfg.w_rows}[field]
            ext = {"dst": i.rows * i.aux, "src0": i.rows * i.blocks,
                   "src1": i.blocks * i.aux * n}[field]
            value = size - ext + 1
        else:
            field, value = "dst", cfg.a_rows - i.rows * i.blocks + 1
        if field != "dram" and value > 0xFFFF:
            return None
        return i.replace(**{field: value})

    # ---- malformed tails: (words, description) ----
    def malformed(self) -> tuple[np.ndarray, str]:
        cfg, n = self.cfg, self.n
        kind = self.pick(("shift", "reserved", "past_end", "zero", "flags", "stray_cs",
                          "rope", "opcode", "misaligned", "gemm_b_from_a"))
        if kind == "shift":
            v = self.pick((63, 64, 127, 255, int(self.rng.integers(63, 256))))
            op = self.pick((OP_SWIGLU, OP_RESADD)) if self.chance(0.6) else self.pick(VECTOR_OPS)
            i = self.vector(op)
            i = i.replace(shift1=v) if op in (OP_SWIGLU, OP_RESADD) and self.chance(0.6) else i.replace(shift0=v)
            return i.encode(), f"{i}  <- shift > 62"
        if kind == "reserved":
            i = self.legal()
            w = i.encode()
            word, bit = self.pick(((0, 16 + int(self.rng.integers(16))), (5, 24 + int(self.rng.integers(8))),
                                   (6, 24 + int(self.rng.integers(8)))))
            w[word] |= np.uint32(1 << bit)
            return w, f"{i}  <- reserved bit w{word}[{bit}]"
        if kind == "past_end":
            i = self.legal()
            j = self._one_past_end(i)
            if j is None:
                # a 1-row range in a 65536-row SRAM would start at row 65536, which no 16-bit
                # field holds: two rows, starting at its last row, instead
                j = self._one_past_end(i.replace(rows=i.rows + 1))
            i = j
            return i.encode(), f"{i}  <- one row/line past an end"
        if kind == "gemm_b_from_a":
            # B from the activation SRAM: its extent is checked against A's size, not W's
            i = self.gemm()
            i = i.replace(flags=i.flags | 2, src1=cfg.a_rows - i.blocks * i.aux * n + 1)
            return i.encode(), f"{i}  <- B (from A) one row past A's end"
        if kind == "zero":
            i = self.legal()
            if i.op in (OP_LOAD, OP_STORE):
                i = i.replace(rows=0)
            else:
                i = i.replace(**{self.pick(("rows", "blocks", "aux") if i.op == OP_GEMM else ("rows", "blocks")): 0})
            return i.encode(), f"{i}  <- zero size"
        if kind == "flags":
            i = self.legal()
            if i.op in (OP_LOAD, OP_STORE):
                i = i.replace(flags=self.pick((3, 4, 0x80)) if i.op == OP_LOAD else self.pick((MEM_W, 3, 4)))
            elif i.op == OP_GEMM:
                i = i.replace(flags=i.flags | (8 << int(self.rng.integers(0, 5))))
            else:
                bad = [f for f in (1, 2, 4, 0x80) if f & ~COLSCALE_FLAGS[i.op]]
                i = i.replace(flags=i.flags | self.pick(bad))
            return i.encode(), f"{i}  <- flags not accepted"
        if kind == "stray_cs":
            i = self.legal()
            which = self.pick(("cs0", "cs1"))
            flag = 1 if which == "cs0" else 2
            i = i.replace(**{which: int(self.rng.integers(1, 1 << 16))})
            if i.op in VECTOR_OPS:
                i = i.replace(flags=i.flags & ~flag)
            return i.encode(), f"{i}  <- table address without its flag"
        if kind == "rope":
            i = self.vector(OP_ROPE)
            i = i.replace(**self.pick(({"aux": 0}, {"aux": 1}, {"aux": i.aux - 1 if i.aux > 2 else 3},
                                       {"aux": n + 2}, {"src2": 0})))
            return i.encode(), f"{i}  <- bad rotation width / blocks per head"
        if kind == "opcode":
            known = set(OPCODE_NAMES)
            op = self.pick([o for o in (0x00, 0x03, 0x0E, 0x11, 0x26, 0x7F, 0xFF) if o not in known])
            i = Insn(op, rows=1, blocks=1, aux=1)
            return i.encode(), f"{i}  <- unknown opcode"
        assert kind == "misaligned"
        i = self.dma()
        i = i.replace(dram=(i.dram - n) + self.pick((4, 8, n // 2, n - 4)) if i.dram >= n else i.dram + 4)
        return i.encode(), f"{i}  <- DRAM address not line-aligned"


def _row_fields(i: Insn, n: int) -> list[tuple[str, int, int, bool]]:
    """(field, memory, rows, written) of each SRAM row range ``i`` names (as
    footprint.footprint reads them): moving the field moves that range."""
    rb = i.rows * i.blocks
    if i.op == OP_LOAD:
        return [("dst", i.flags & 3, i.rows, True)]
    if i.op == OP_STORE:
        return [("src0", i.flags & 3, i.rows, False)]
    if i.op == OP_GEMM:
        return [("src0", MEM_A, rb, False),
                ("src1", MEM_A if i.flags & 2 else MEM_W, i.blocks * i.aux * n, False),
                ("dst", MEM_ACC, i.rows * i.aux, True)]
    out = [("dst", MEM_A, rb, True)]
    src0_mem = MEM_A if i.op in (OP_RMS, OP_RESADD) else MEM_ACC
    out.append(("src0", src0_mem, rb, False))
    if i.op == OP_RMS:
        out.append(("src1", MEM_W, i.blocks, False))
    elif i.op == OP_ROPE:
        out.append(("src1", MEM_W, i.rows * i.src2 * rope_rows_per_position(i.aux, n), False))
    elif i.op in (OP_SWIGLU, OP_RESADD):
        out.append(("src1", MEM_ACC, rb, False))
    if i.flags & 1:
        out.append(("cs0", MEM_W, colscale_rows(i.blocks), False))
    if i.flags & 2 and i.op == OP_SWIGLU:
        out.append(("cs1", MEM_W, colscale_rows(i.blocks), False))
    return out


def _in_windows(i: Insn, cfg: HwConfig) -> bool:
    """Every row range of ``i`` lies inside one SRAM window (the rows the prologue loads)."""
    for f, mem, rows, _ in _row_fields(i, cfg.n):
        lo = getattr(i, f)
        if not any(w <= lo and lo + rows <= w + WIN_ROWS for w in windows(cfg.rows_of(mem))):
            return False
    return True


def _a_sources_ok(i: Insn, n: int) -> bool:
    """A vector op's A source is its destination or disjoint from it (other overlaps are
    undefined, ISA.md)."""
    if i.op not in (OP_RMS, OP_RESADD):
        return True
    rb = i.rows * i.blocks
    return i.src0 == i.dst or i.src0 + rb <= i.dst or i.dst + rb <= i.src0


def prologue(cfg: HwConfig) -> list[Insn]:
    """LOAD every SRAM window from the low DRAM window (A, W, then ACC)."""
    n, w, insns, addr = cfg.n, WIN_ROWS, [], 0
    for mem in (MEM_A, MEM_W, MEM_ACC):
        for row in windows(cfg.rows_of(mem)):
            insns.append(Insn(OP_LOAD, flags=mem, rows=w, dst=row, dram=addr))
            addr += w * n * (4 if mem == MEM_ACC else 1)
    assert addr <= DRAM_WIN
    return insns


def dram_image(rng: np.random.Generator, nbytes: int) -> np.ndarray:
    """Random bytes with runs of boundary values (int8 and int32 extremes, zeros)."""
    img = rng.integers(0, 256, nbytes, dtype=np.uint8)
    words = img.view(np.int32)
    for _ in range(8):
        a = int(rng.integers(0, words.size))
        words[a:a + int(rng.integers(1, 64))] = rng.choice(
            np.array([0, -1, 1, 2**31 - 1, -2**31, 0x7F7F7F7F, -0x7F7F7F80, 0x01010101], dtype=np.int64)
        ).astype(np.int32)
    return img


def make_program(cfg: HwConfig, seed: int) -> Program:
    rng = np.random.default_rng(seed)
    gen = Generator(cfg, rng)
    body = gen.trio() if gen.chance(0.3) else [gen.legal()]
    for _ in range(int(rng.integers(0, 9))):
        body.append(gen.related(body[-1]) if gen.chance(0.5) else gen.legal())
    insns = prologue(cfg) + body
    words = [i.encode() for i in insns]
    listing = [str(i) for i in insns]
    r = rng.random()
    start_pc = 0
    if r < 0.45:
        w, text = gen.malformed()
        words.append(w)
        listing.append(text)
    elif r < 0.55:   # no HALT: the last instruction is the last IMEM slot, pc runs past the end
        start_pc = cfg.imem_depth - len(words)
        listing[-1] += "  <- last IMEM slot, no HALT"
    else:
        words.append(Insn(OP_HALT).encode())
        listing.append("HALT")
        if rng.random() < 0.2:   # HALT in the last IMEM slot
            start_pc = cfg.imem_depth - len(words)
    return Program(seed, np.stack(words), start_pc, dram_image(rng, DRAM_WIN), dram_image(rng, DRAM_WIN),
                   listing)


# ---------------- execution and comparison ----------------

def _run(dev, prog: Program) -> tuple[tuple | None, object]:
    cfg = dev.config
    dev.write_mem(0, prog.dram_lo)
    dev.write_mem(cfg.dram_bytes - DRAM_WIN, prog.dram_hi)
    dev.write_program(prog.words, prog.start_pc)
    try:
        dev.run(1_000_000)
        err = None
    except AcceleratorError as e:
        err = (e.code, e.pc)
    return err, dev.counters()


def _dump_sram(dev) -> np.ndarray:
    """Every SRAM window's bytes, via a second program: STORE A and ACC windows to the low DRAM
    window, then copy W windows through an identity GEMM into ACC and STORE those to the high
    one. -> uint8 array (A windows, ACC windows, W windows as int32)."""
    cfg, n, w = dev.config, dev.config.n, WIN_ROWS
    eye_addr = DRAM_WIN - n * n
    hi = cfg.dram_bytes - DRAM_WIN
    insns, addr = [], 0
    for mem in (MEM_A, MEM_ACC):
        for row in windows(cfg.rows_of(mem)):
            insns.append(Insn(OP_STORE, flags=mem, rows=w, src0=row, dram=addr))
            addr += w * n * (4 if mem == MEM_ACC else 1)
    assert addr <= eye_addr
    lo_bytes = addr
    insns.append(Insn(OP_LOAD, flags=MEM_A, rows=n, dst=0, dram=eye_addr))
    for k, row in enumerate(windows(cfg.w_rows)):
        insns.append(Insn(OP_GEMM, rows=n, blocks=1, aux=w // n, dst=0, src0=0, src1=row))
        insns.append(Insn(OP_STORE, flags=MEM_ACC, rows=w, src0=0, dram=hi + k * w * n * 4))
    insns.append(Insn(OP_HALT))
    dev.write_mem(eye_addr, np.eye(n, dtype=np.int8))
    dev.write_program(encode_program(insns), 0)
    dev.run(1_000_000)
    return np.concatenate([dev.read_mem(0, lo_bytes), dev.read_mem(hi, 3 * w * n * 4)])


def _executed(prog: Program, count: int) -> list[Insn]:
    return [Insn.decode(w) for w in prog.words[:count]]


def check(rtl, prog: Program) -> list[str]:
    """Run ``prog`` on the RTL and a fresh golden model; -> list of mismatches (empty: equal)."""
    cfg = rtl.config
    gold = GoldenAccelerator(cfg)
    problems = []
    err_r, cnt_r = _run(rtl, prog)
    err_g, cnt_g = _run(gold, prog)
    if err_r != err_g:
        problems.append(f"outcome: rtl {err_r} golden {err_g} ((code, pc) or None = HALT)")
    pc_r, pc_g = rtl.read_reg(REG_PC), gold.pc
    if pc_r != pc_g:
        problems.append(f"pc register: rtl {pc_r} golden {pc_g}")
    for k in ("instructions", "bytes_in", "bytes_out"):
        if getattr(cnt_r, k) != getattr(cnt_g, k):
            problems.append(f"counter {k}: rtl {getattr(cnt_r, k)} golden {getattr(cnt_g, k)}")
    stop = "halt" if err_g is None else ("pc_error" if err_g[1] >= cfg.imem_depth else "decode_error")
    lanes = getattr(getattr(rtl, "accel_config", None), "lanes", None)   # the vector unit's
    want = run_cycles(_executed(prog, cnt_g.instructions), cfg, stop, rtl.memory_timing,
                      lanes=lanes).to_dict()
    for k, v in want.items():
        if getattr(cnt_r, k) != v:
            problems.append(f"counter {k}: rtl {getattr(cnt_r, k)} cycle model {v}")
    for name, addr in (("low", 0), ("high", cfg.dram_bytes - DRAM_WIN)):
        a, b = rtl.read_mem(addr, DRAM_WIN), gold.read_mem(addr, DRAM_WIN)
        if not np.array_equal(a, b):
            bad = np.flatnonzero(a != b)
            problems.append(f"DRAM {name} window: {bad.size} bytes differ, first at 0x{addr + bad[0]:x}")
    if not problems:   # the SRAM dump runs a second program; only meaningful if the first agreed
        a, b = _dump_sram(rtl), _dump_sram(gold)
        if not np.array_equal(a, b):
            problems.append(f"SRAM windows: {int((a != b).sum())} dumped bytes differ")
    return problems


@dataclass
class FuzzReport:
    seed: int
    programs: int
    seconds: float
    failures: list[tuple[Program, list[str]]]
    outcomes: dict[str, int]

    def summary(self) -> str:
        rate = self.programs / self.seconds if self.seconds else 0.0
        return (f"fuzz seed={self.seed}: {self.programs} programs in {self.seconds:.1f} s "
                f"({rate:.1f}/s), {len(self.failures)} mismatching; outcomes {self.outcomes}")


def fuzz(rtl, seed: int, programs: int | None = None, seconds: float | None = None,
         stop_at_first: bool = True) -> FuzzReport:
    """Run programs ``seed, seed+1, ...`` until ``programs`` ran or ``seconds`` passed."""
    if programs is None and seconds is None:
        raise ValueError("give programs= or seconds= (a budget)")
    t0, k, failures, outcomes = time.perf_counter(), 0, [], {}
    while (programs is None or k < programs) and (seconds is None or time.perf_counter() - t0 < seconds):
        prog = make_program(rtl.config, seed + k)
        problems = check(rtl, prog)
        tail = prog.listing[-1]
        key = tail.split("<- ")[-1] if "<- " in tail else "halt"
        outcomes[key] = outcomes.get(key, 0) + 1
        k += 1
        if problems:
            failures.append((prog, problems))
            if stop_at_first:
                break
    return FuzzReport(seed, k, time.perf_counter() - t0, failures, outcomes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=None, help="first program's seed (default: HW_TEST_SEED or 0)")
    p.add_argument("--programs", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--variant", default="test")
    p.add_argument("--lib", default=None, help="a prebuilt libaccel.so (hw_offload.mutate uses it)")
    a = p.parse_args(argv)
    from .driver import Accelerator
    seed = a.seed if a.seed is not None else env_seed(0)
    with Accelerator(a.variant, lib_path=a.lib) as rtl:
        rep = fuzz(rtl, seed, a.programs, a.seconds if (a.seconds or a.programs) else 30.0)
    print(rep.summary())
    for prog, problems in rep.failures:
        print(prog)
        print("\n".join("  MISMATCH " + s for s in problems))
        print(f"replay: python -m hw_offload.fuzz --seed {prog.seed} --programs 1")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
