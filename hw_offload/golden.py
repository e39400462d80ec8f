"""Functional simulator: executes the accelerator's instruction stream in numpy, bit-exact.

A ``device.Device`` like ``driver.Accelerator``, with the same host-window checks and link
accounting (both inherit them from ``device.HostPort``), so tests and the runtime can swap
the two. It counts instructions and DMA
bytes exactly like the RTL, but has no notion of cycles (``cycles`` is None).

Memory layout is column-block-major everywhere: element (row i, column j) of a matrix with
``rows`` rows at SRAM row ``base`` lives at row ``base + (j // N) * rows + i``, lane ``j % N``.
"""
from __future__ import annotations

import numpy as np

from . import int_arith as ia
from .configs import AccelConfig, resolve
from .device import HostPort
from .errors import AcceleratorError
from .mem_timing import MemoryTiming
from .isa import (COLSCALE_A, COLSCALE_B, COLSCALE_FLAGS, CS_SHIFT, ERR_FIELD, ERR_NONE, ERR_OPCODE, ERR_PC, ERR_RANGE, IMEM_BASE,
                  MEM_A, MEM_ACC, MEM_W, OP_GEMM, OP_HALT, OP_LOAD, OP_REQ, OP_RESADD, OP_RMS,
                  OP_ROPE, OP_SMAX, OP_STORE, OP_SWIGLU, VECTOR_OPS, HwConfig, Insn,
                  colscale_rows, rope_rows_per_position)
from .device_counters import Counters


def validate(i: Insn, cfg: HwConfig) -> int:
    """The decode-stage checks of rtl/accel_top.sv. Returns an error code (0 = valid)."""
    n = cfg.n
    rb, cb = i.rows * i.blocks, i.rows * i.aux
    if i.reserved:
        return ERR_FIELD
    # a column-scale table address without its flag (or on a non-vector op) is a stray field
    vec_flags = i.flags if i.op in VECTOR_OPS else 0
    if (i.cs0 and not vec_flags & COLSCALE_A) or (i.cs1 and not vec_flags & COLSCALE_B):
        return ERR_FIELD
    if i.op == OP_HALT:
        return ERR_NONE
    if i.op in (OP_LOAD, OP_STORE):
        mem = i.flags & 3
        if i.flags >> 2 or mem == 3 or i.rows == 0 or (i.op == OP_STORE and mem == MEM_W):
            return ERR_FIELD
        lines = i.rows * (4 if mem == MEM_ACC else 1)
        row = i.dst if i.op == OP_LOAD else i.src0
        if i.dram % n or i.dram + lines * n > cfg.dram_bytes or row + i.rows > cfg.rows_of(mem):
            return ERR_RANGE
        return ERR_NONE
    if i.op == OP_GEMM:
        if i.flags >> 3 or i.rows == 0 or i.blocks == 0 or i.aux == 0:
            return ERR_FIELD
        b_rows = cfg.a_rows if i.flags & 2 else cfg.w_rows
        if (i.dst + cb > cfg.acc_rows or i.src0 + rb > cfg.a_rows
                or i.src1 + i.blocks * i.aux * n > b_rows):
            return ERR_RANGE
        return ERR_NONE
    if i.op in VECTOR_OPS:
        if (i.flags & ~COLSCALE_FLAGS[i.op] or i.rows == 0 or i.blocks == 0 or i.shift0 > 62
                or i.shift1 > 62
                or (i.op == OP_ROPE and (i.aux < 2 or i.aux % 2 or i.aux > n or i.src2 == 0))):
            return ERR_FIELD
        if i.dst + rb > cfg.a_rows:
            return ERR_RANGE
        table = colscale_rows(i.blocks)
        if ((i.flags & COLSCALE_A and i.cs0 + table > cfg.w_rows)
                or (i.flags & COLSCALE_B and i.cs1 + table > cfg.w_rows)):
            return ERR_RANGE
        bad = {
            OP_REQ: i.src0 + rb > cfg.acc_rows,
            OP_SMAX: i.src0 + rb > cfg.acc_rows,
            OP_RMS: i.src0 + rb > cfg.a_rows or i.src1 + i.blocks > cfg.w_rows,
            OP_ROPE: (i.src0 + rb > cfg.acc_rows or
                      i.src1 + i.rows * i.src2 * rope_rows_per_position(i.aux, n) > cfg.w_rows),
            OP_SWIGLU: i.src0 + rb > cfg.acc_rows or i.src1 + rb > cfg.acc_rows,
            OP_RESADD: i.src0 + rb > cfg.a_rows or i.src1 + rb > cfg.acc_rows,
        }[i.op]
        return ERR_RANGE if bad else ERR_NONE
    return ERR_OPCODE


class GoldenAccelerator(HostPort):
    """numpy model of one accelerator instance. Memories persist across runs like the RTL's.

    config: the sizes to model, as an ``isa.HwConfig`` (what a Verilator build reports) or a
    ``configs.AccelConfig`` / its name (default chip16), so golden runs of any configuration
    need no Verilator build."""

    def __init__(self, config: HwConfig | AccelConfig | str | None = None):
        super().__init__()
        self.accel_config = None if isinstance(config, HwConfig) else resolve(config)
        self.config = cfg = config if isinstance(config, HwConfig) else self.accel_config.hw()
        if self.accel_config is not None:   # the cycle model (golden_cycles) times DRAM with it
            self.memory_timing = MemoryTiming.from_config(self.accel_config)
        self.dram = np.zeros(cfg.dram_bytes, dtype=np.uint8)
        self.imem = np.zeros((cfg.imem_depth, 8), dtype=np.uint32)
        self.asram = np.zeros((cfg.a_rows, cfg.n), dtype=np.int8)
        self.wsram = np.zeros((cfg.w_rows, cfg.n), dtype=np.int8)
        self.acc = np.zeros((cfg.acc_rows, cfg.n), dtype=np.int32)
        self.pc = 0

    # ---------------- host interface: HostPort's raw hooks ----------------
    def _write_bytes(self, addr: int, buf: bytes) -> None:
        data = np.frombuffer(buf, dtype=np.uint8)
        if addr < IMEM_BASE:
            self.dram[addr:addr + data.size] = data
        else:
            off = addr - IMEM_BASE
            self.imem.view(np.uint8).reshape(-1)[off:off + data.size] = data

    def _read_bytes(self, addr: int, nbytes: int) -> np.ndarray:
        if addr < IMEM_BASE:
            return self.dram[addr:addr + nbytes].copy()
        off = addr - IMEM_BASE
        return self.imem.view(np.uint8).reshape(-1)[off:off + nbytes].copy()

    def _set_start_pc(self, start_pc: int) -> None:
        pass   # HostPort keeps self.start_pc; _run_program starts there

    # ---------------- execution ----------------
    def _run_program(self, max_cycles: int) -> Counters:
        """HostPort.run's hook: execute from start_pc to HALT. No cycles here, so no limit."""
        del max_cycles
        cfg = self.config
        self.pc = self.start_pc
        c = Counters(cycles=None, array_busy=None, vector_busy=None, dma_busy=None, stall=None,
                     overlap=None, all_busy=None)
        self._counters = c
        while True:
            if self.pc >= cfg.imem_depth:
                raise AcceleratorError(ERR_PC, self.pc)
            insn = Insn.decode(self.imem[self.pc])
            err = validate(insn, cfg)
            if err:
                raise AcceleratorError(err, self.pc, str(insn))
            c.instructions += 1
            if insn.op == OP_HALT:
                return c
            self._execute(insn, c)
            self.pc += 1

    def _execute(self, i: Insn, c: Counters) -> None:
        n = self.config.n
        if i.op in (OP_LOAD, OP_STORE):
            mem = {MEM_A: self.asram, MEM_W: self.wsram, MEM_ACC: self.acc}[i.flags & 3]
            nbytes = i.rows * mem.shape[1] * mem.itemsize
            if i.op == OP_LOAD:
                raw = self.dram[i.dram:i.dram + nbytes]
                mem[i.dst:i.dst + i.rows] = raw.view(mem.dtype).reshape(i.rows, n)
                c.bytes_in += nbytes
            else:
                self.dram[i.dram:i.dram + nbytes] = mem[i.src0:i.src0 + i.rows].view(np.uint8).reshape(-1)
                c.bytes_out += nbytes
        elif i.op == OP_GEMM:
            self._gemm(i)
        else:
            self._vector(i)

    def _gemm(self, i: Insn) -> None:
        n, m, kb_n, nb_n = self.config.n, i.rows, i.blocks, i.aux
        bsrc = self.asram if i.flags & 2 else self.wsram
        for nb in range(nb_n):
            total = np.zeros((m, n), dtype=np.int64)
            for kb in range(kb_n):
                a = self.asram[i.src0 + kb * m:i.src0 + kb * m + m].astype(np.int64)
                if i.flags & 4:  # transposed B: source row j feeds PE column j
                    base = i.src1 + kb * nb_n * n + nb * n
                    tile = bsrc[base:base + n].astype(np.int64).T
                else:
                    base = i.src1 + nb * kb_n * n + kb * n
                    tile = bsrc[base:base + n].astype(np.int64)
                total += a @ tile
            rows = slice(i.dst + nb * m, i.dst + nb * m + m)
            if i.flags & 1:
                total += self.acc[rows]
            # int32 wrap-around, like the RTL's 32-bit adders
            self.acc[rows] = (total & 0xFFFFFFFF).astype(np.uint32).view(np.int32)

    def _blocks(self, mem: np.ndarray, base: int, rows: int, blocks: int) -> np.ndarray:
        """Column-block-major region -> (rows, blocks*N) matrix."""
        reg = mem[base:base + blocks * rows].reshape(blocks, rows, -1)
        return reg.transpose(1, 0, 2).reshape(rows, -1)

    def _store_blocks(self, base: int, mat: np.ndarray, blocks: int) -> None:
        rows = mat.shape[0]
        self.asram[base:base + blocks * rows] = mat.reshape(rows, blocks, -1).transpose(1, 0, 2).reshape(blocks * rows, -1)

    def _acc_operand(self, base: int, rows: int, blocks: int, scaled: bool, table: int) -> np.ndarray:
        """An ACC operand as (rows, blocks*N) int64, column-scaled when its flag is set."""
        x = self._blocks(self.acc, base, rows, blocks).astype(np.int64)
        if not scaled:
            return x
        mults = self.wsram[table:table + colscale_rows(blocks)].view(np.uint16).reshape(-1)
        return ia.column_scale(x, mults, CS_SHIFT)

    def _vector(self, i: Insn) -> None:
        n, rows, blocks = self.config.n, i.rows, i.blocks
        acc_a = lambda base: self._acc_operand(base, rows, blocks, bool(i.flags & COLSCALE_A), i.cs0)  # noqa: E731
        if i.op == OP_REQ:
            out = ia.requant(acc_a(i.src0), i.mult0, i.shift0)
        elif i.op == OP_RMS:
            x = self._blocks(self.asram, i.src0, rows, blocks)
            gamma = self.wsram[i.src1:i.src1 + blocks].reshape(-1)
            out = ia.rmsnorm_rows(x, gamma, i.mult0, i.shift0)
        elif i.op == OP_ROPE:
            # table: (position r, block-within-head hb) -> rows src1 + (r*bph + hb)*tr,
            # entries {cos16, sin16} little-endian
            tr, bph = rope_rows_per_position(i.aux, n), i.src2
            table = self.wsram[i.src1:i.src1 + rows * bph * tr].reshape(rows, bph, tr * n)
            pairs = np.ascontiguousarray(table).view(np.int16)  # (rows, bph, tr*n/2)
            half = i.aux // 2
            x = acc_a(i.src0).reshape(rows, blocks, n)
            out = np.stack([ia.rope_rows(x[:, b], pairs[:, b % bph, 0:2 * half:2],
                                         pairs[:, b % bph, 1:2 * half:2], i.aux, i.mult0, i.shift0)
                            for b in range(blocks)], axis=1).reshape(rows, -1)
        elif i.op == OP_SMAX:
            out = ia.softmax_rows(self._blocks(self.acc, i.src0, rows, blocks),
                                  i.mult0, i.shift0, i.src2)
        elif i.op == OP_SWIGLU:
            out = ia.swiglu(acc_a(i.src0),
                            self._acc_operand(i.src1, rows, blocks, bool(i.flags & COLSCALE_B), i.cs1),
                            i.mult0, i.shift0, i.mult1, i.shift1)
        elif i.op == OP_RESADD:
            out = ia.resadd(self._blocks(self.asram, i.src0, rows, blocks),
                            acc_a(i.src1), i.mult0, i.mult1, i.shift0,
                            i.shift1)
        else:  # validate() rejects every other opcode before we get here
            raise AssertionError(f"unhandled opcode {i.op}")
        self._store_blocks(i.dst, out, blocks)
