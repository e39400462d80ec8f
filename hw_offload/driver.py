"""ctypes driver for the Verilated accelerator (the cycle-accurate simulator).

    acc = Accelerator()                 # builds (or reuses) the cached library
    acc.write_mem(addr, data)           # DRAM bytes; instructions via write_program
    counters = acc.run(max_cycles=...)  # raises AcceleratorError / CycleLimitError
    acc.read_mem(addr, nbytes)

Bounds are checked here against the sizes the RTL reports in its registers, and again in the
C++ harness, so bad input raises an exception instead of crashing the interpreter.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .build import build
from .device_counters import Counters, LinkCounters
from .errors import AcceleratorError, AddressError, CycleLimitError
from .isa import (COUNTER_REGS, IMEM_BASE, INSN_BYTES, REG_A_ROWS, REG_ACC_ROWS, REG_DRAM_BYTES,
                  REG_ERR_CODE, REG_ERR_PC, REG_IMEM_DEPTH, REG_N, REG_PC, REG_START_PC,
                  REG_STATUS, REG_W_ROWS, HwConfig, Insn)

_LIBS: dict[str, ctypes.CDLL] = {}


def _load(path: Path) -> ctypes.CDLL:
    key = str(path)
    if key not in _LIBS:
        lib = ctypes.CDLL(key)
        vp, u64, u32, p8 = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_char_p
        lib.accel_create.restype = vp
        lib.accel_destroy.argtypes = [vp]
        lib.accel_last_error.argtypes = [vp]
        lib.accel_last_error.restype = ctypes.c_char_p
        lib.accel_write_mem.argtypes = [vp, u64, p8, u64]
        lib.accel_read_mem.argtypes = [vp, u64, ctypes.c_void_p, u64]
        lib.accel_write_reg.argtypes = [vp, u32, u32]
        lib.accel_read_reg.argtypes = [vp, u32, ctypes.POINTER(u32)]
        lib.accel_run.argtypes = [vp, u64, ctypes.POINTER(u64)]
        lib.accel_resume.argtypes = [vp, u64, ctypes.POINTER(u64)]
        lib.accel_reset.argtypes = [vp]
        lib.accel_trace_open.argtypes = [vp, p8]
        lib.accel_trace_close.argtypes = [vp]
        _LIBS[key] = lib
    return _LIBS[key]


def check_max_cycles(max_cycles) -> None:
    """A cycle limit is a positive int: a float would reach ctypes as a bare ArgumentError, and
    a negative one would wrap to 2^64 (one unsliced call that Ctrl-C cannot stop)."""
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)):
        raise TypeError(f"max_cycles must be an int, got {type(max_cycles).__name__} {max_cycles!r}")
    if max_cycles < 1:
        raise ValueError(f"max_cycles must be >= 1, got {max_cycles}")


class Accelerator:
    """One simulated accelerator instance. ``variant``: "test" (assertions, FST) or "fast"."""

    def __init__(self, variant: str = "test", lib_path: str | Path | None = None):
        self._lib = _load(Path(lib_path) if lib_path else build(variant))
        self._h = self._lib.accel_create()
        if not self._h:
            raise RuntimeError("accel_create returned NULL")
        r = self.read_reg
        self.config = HwConfig(n=r(REG_N), a_rows=r(REG_A_ROWS), w_rows=r(REG_W_ROWS),
                               acc_rows=r(REG_ACC_ROWS), dram_bytes=r(REG_DRAM_BYTES),
                               imem_depth=r(REG_IMEM_DEPTH))
        self.start_pc = 0
        self._counters = Counters()
        self.link = LinkCounters()   # host-link traffic (cost.py turns it into time)

    # ---------------- lifetime ----------------
    def close(self) -> None:
        if getattr(self, "_h", None):
            self._lib.accel_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._h:
            raise RuntimeError("this Accelerator has been closed")
        return self._h

    def _error(self) -> str:
        return self._lib.accel_last_error(self._h).decode()

    # ---------------- memory and registers ----------------
    def _check_window(self, addr: int, n: int) -> None:
        cfg = self.config
        if not isinstance(addr, (int, np.integer)) or addr < 0:
            raise AddressError(f"address must be a non-negative int, got {addr!r}")
        if addr % 4 or n % 4:
            raise AddressError(f"host access at 0x{addr:x}, {n} bytes: address and length must be "
                               "multiples of 4")
        in_dram = addr + n <= cfg.dram_bytes
        in_imem = IMEM_BASE <= addr and addr + n <= IMEM_BASE + cfg.imem_depth * INSN_BYTES
        if not (in_dram or in_imem):
            raise AddressError(f"host access [0x{addr:x}, 0x{addr + n:x}) is outside DRAM "
                               f"[0, 0x{cfg.dram_bytes:x}) and instruction memory "
                               f"[0x{IMEM_BASE:x}, 0x{IMEM_BASE + cfg.imem_depth * INSN_BYTES:x})")

    def write_mem(self, addr: int, data) -> None:
        """Write bytes (any array / bytes-like; its raw little-endian bytes) at a byte address."""
        buf = np.ascontiguousarray(data).tobytes() if not isinstance(data, bytes) else data
        self._check_window(addr, len(buf))
        if self._lib.accel_write_mem(self._handle(), addr, buf, len(buf)) != 0:
            raise AddressError(self._error())
        self.link.bytes_to_device += len(buf)
        self.link.transactions += 1

    def read_mem(self, addr: int, nbytes: int) -> np.ndarray:
        """-> uint8[nbytes]."""
        self._check_window(addr, nbytes)
        out = np.zeros(nbytes, dtype=np.uint8)
        if self._lib.accel_read_mem(self._handle(), addr, out.ctypes.data, nbytes) != 0:
            raise AddressError(self._error())
        self.link.bytes_from_device += nbytes
        self.link.transactions += 1
        return out

    def write_reg(self, index: int, value: int) -> None:
        if not 0 <= index < 256 or not 0 <= value < 2**32:
            raise ValueError(f"register {index} / value {value}: expected index < 256, 32-bit value")
        if self._lib.accel_write_reg(self._handle(), index, value) != 0:
            raise RuntimeError(self._error())

    def read_reg(self, index: int) -> int:
        if not 0 <= index < 256:
            raise ValueError(f"register index {index} out of range [0, 256)")
        v = ctypes.c_uint32()
        if self._lib.accel_read_reg(self._handle(), index, ctypes.byref(v)) != 0:
            raise RuntimeError(self._error())
        return v.value

    def write_program(self, words: np.ndarray, start_pc: int = 0) -> None:
        """words: uint32[n, 8] from isa.encode_program; placed at instruction ``start_pc``."""
        words = np.asarray(words, dtype=np.uint32)
        if words.ndim != 2 or words.shape[1] != 8:
            raise ValueError(f"program must be uint32[n, 8], got shape {words.shape}")
        self.write_mem(IMEM_BASE + start_pc * INSN_BYTES, words.reshape(-1))
        self.write_reg(REG_START_PC, start_pc)
        self.link.transactions += 1
        self.start_pc = start_pc

    # ---------------- execution ----------------
    SLICE_CYCLES = 1 << 20   # ~0.5 s of simulation: the Ctrl-C response time

    def run(self, max_cycles: int = 50_000_000) -> Counters:
        """Run from START_PC until HALT. Raises AcceleratorError on a malformed instruction and
        CycleLimitError (naming the last pc) if HALT is not reached within max_cycles.

        The simulation is clocked in slices of ``SLICE_CYCLES`` so that Ctrl-C (a Python
        signal, handled only between C calls) stops a long run within a fraction of a second;
        the accelerator is then reset to idle, memories kept, and KeyboardInterrupt re-raised.
        """
        check_max_cycles(max_cycles)
        h = self._handle()
        cycles = ctypes.c_uint64()
        self.link.transactions += 2   # start doorbell + completion status
        done = 0
        try:
            rc = self._lib.accel_run(h, min(max_cycles, self.SLICE_CYCLES), ctypes.byref(cycles))
            done += cycles.value
            while rc == 1 and done < max_cycles:
                rc = self._lib.accel_resume(h, min(max_cycles - done, self.SLICE_CYCLES),
                                            ctypes.byref(cycles))
                done += cycles.value
        except KeyboardInterrupt:
            self._lib.accel_reset(h)  # stop the half-run program; the next run starts clean
            raise
        if rc == 1:
            pc = self.read_reg(REG_PC)
            self._lib.accel_reset(h)  # leave it idle so the next run can start
            raise CycleLimitError(max_cycles, pc)
        if rc != 0:
            raise RuntimeError(f"simulation failed: {self._error()}")
        self._counters = self._read_counters()
        if self.read_reg(REG_STATUS) & 4:
            pc = self.read_reg(REG_ERR_PC)
            words = self.read_mem(IMEM_BASE + pc * INSN_BYTES, INSN_BYTES).view(np.uint32) \
                if pc < self.config.imem_depth else None
            raise AcceleratorError(self.read_reg(REG_ERR_CODE), pc,
                                   str(Insn.decode(words)) if words is not None else "")
        return self._counters

    def _read_counters(self) -> Counters:
        vals = {name: self.read_reg(reg) | (self.read_reg(reg + 1) << 32)
                for name, reg in COUNTER_REGS.items()}
        return Counters(**vals)

    def counters(self) -> Counters:
        return self._counters

    # ---------------- waveform ----------------
    def trace(self, path: str | Path) -> None:
        """Start writing an FST waveform of every following cycle (test build only).

        Raises ValueError for a name not ending in .fst (the build writes FST only) and
        OSError when the file cannot be created, before any cycle runs."""
        path = Path(path)
        if path.suffix.lower() != ".fst":
            raise ValueError(f"trace file {path}: this build writes FST waveforms; name it *.fst")
        try:
            path.open("wb").close()   # the harness's writer would fail silently
        except OSError as e:
            raise OSError(f"cannot write the waveform to {path}: {e.strerror}") from None
        if self._lib.accel_trace_open(self._handle(), str(path).encode()) != 0:
            raise RuntimeError(self._error())

    def close_trace(self) -> None:
        self._lib.accel_trace_close(self._handle())
