"""The device contract shared by the golden model and the Verilator driver.

``Device`` is what the session, the fuzzer and the tests program against: the host memory
window, program upload, run and counters. ``HostPort`` is the one implementation of the parts
both devices must do identically, so they cannot drift apart:

* the host-window checks (a bad address raises ``AddressError`` before any byte moves),
* the program-shape and cycle-limit checks,
* the host-link accounting (``LinkCounters``; cost.py turns it into time).

A device subclasses ``HostPort`` and supplies four raw hooks: ``_write_bytes``,
``_read_bytes``, ``_set_start_pc`` and ``_run_program`` (and ``_set_memory_timing`` if its
off-chip memory has a clock: the Verilator harness's does, the golden model's does not).
The DRAM half of the host window is the memory outside the accelerator (behind its AXI4
port); the instruction-memory half goes through the accelerator's host port.
"""
from __future__ import annotations

import abc

from typing import Protocol, runtime_checkable

import numpy as np

from .device_counters import Counters, LinkCounters
from .errors import AddressError
from .isa import IMEM_BASE, INSN_BYTES, INSN_WORDS, HwConfig
from .mem_timing import MemoryTiming, default_timing

DEFAULT_MAX_CYCLES = 50_000_000


@runtime_checkable
class Device(Protocol):
    """One accelerator instance as the host sees it (golden.GoldenAccelerator, driver.Accelerator)."""

    config: HwConfig
    link: LinkCounters
    start_pc: int
    memory_timing: MemoryTiming

    def set_memory_timing(self, latency_cycles: int, bytes_per_cycle: int) -> None: ...

    def write_mem(self, addr: int, data) -> None: ...

    def read_mem(self, addr: int, nbytes: int) -> np.ndarray: ...

    def write_program(self, words: np.ndarray, start_pc: int = 0) -> None: ...

    def run(self, max_cycles: int | None = None) -> Counters: ...

    def counters(self) -> Counters: ...


def check_window(cfg: HwConfig, addr, nbytes) -> None:
    """[addr, addr + nbytes) must be 4-byte aligned and lie wholly in DRAM or instruction memory."""
    if isinstance(addr, bool) or not isinstance(addr, (int, np.integer)) or addr < 0:
        raise AddressError(f"address must be a non-negative int, got {addr!r}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise AddressError(f"length must be a non-negative int, got {nbytes!r}")
    if addr % 4 or nbytes % 4:
        raise AddressError(f"host access at 0x{addr:x}, {nbytes} bytes: address and length must be "
                           "multiples of 4")
    imem_end = IMEM_BASE + cfg.imem_depth * INSN_BYTES
    if addr + nbytes <= cfg.dram_bytes or IMEM_BASE <= addr and addr + nbytes <= imem_end:
        return
    raise AddressError(f"host access [0x{addr:x}, 0x{addr + nbytes:x}) is outside DRAM "
                       f"[0, 0x{cfg.dram_bytes:x}) and instruction memory "
                       f"[0x{IMEM_BASE:x}, 0x{imem_end:x})")


def check_max_cycles(max_cycles) -> None:
    """A cycle limit is a positive int: a float would reach ctypes as a bare ArgumentError, and
    a negative one would wrap to 2^64 (one unsliced call that Ctrl-C cannot stop)."""
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)):
        raise TypeError(f"max_cycles must be an int, got {type(max_cycles).__name__} {max_cycles!r}")
    if max_cycles < 1:
        raise ValueError(f"max_cycles must be >= 1, got {max_cycles}")


def program_words(words) -> np.ndarray:
    """words: uint32[n, 8] (isa.encode_program) -> the same, checked."""
    words = np.asarray(words, dtype=np.uint32)
    if words.ndim != 2 or words.shape[1] != INSN_WORDS:
        raise ValueError(f"program must be uint32[n, {INSN_WORDS}], got shape {words.shape}")
    return words


class HostPort(abc.ABC):
    """The host side common to every device: checks first, then the raw hook, then accounting.

    Link accounting, per call: a memory write or read is one transaction plus its payload; a
    program upload adds one (the START_PC register write); a run adds two (start doorbell and
    completion status).
    """

    config: HwConfig

    def __init__(self) -> None:
        self.start_pc = 0
        self._counters = Counters()
        self.link = LinkCounters()
        self.memory_timing = default_timing()

    # ---- raw hooks: each device (golden, Verilator) implements them; called only with
    # checked arguments ----
    @abc.abstractmethod
    def _write_bytes(self, addr: int, buf: bytes) -> None:
        """Store ``buf`` at byte address ``addr`` of the device's memory map."""

    @abc.abstractmethod
    def _read_bytes(self, addr: int, nbytes: int) -> np.ndarray:
        """uint8[nbytes] read from byte address ``addr``."""

    @abc.abstractmethod
    def _set_start_pc(self, start_pc: int) -> None:
        """Write the START_PC register."""

    @abc.abstractmethod
    def _run_program(self, max_cycles: int) -> Counters:
        """Run from START_PC until HALT, an error or ``max_cycles``; the run's counters."""

    def _set_memory_timing(self, timing: MemoryTiming) -> None:
        """Give the device's off-chip memory this timing (a device without a clock ignores it)."""

    # ---- the Device interface ----
    def set_memory_timing(self, latency_cycles: int, bytes_per_cycle: int) -> None:
        """Off-chip memory timing from now on: ``latency_cycles`` between a burst request and
        its first beat, ``bytes_per_cycle`` of bandwidth (mem_timing.MemoryTiming; a config's
        values are ``cfg.mem_latency_cycles`` and ``cfg.mem_bytes_per_cycle``)."""
        timing = MemoryTiming(latency_cycles, bytes_per_cycle)
        self._set_memory_timing(timing)
        self.memory_timing = timing

    def write_mem(self, addr: int, data) -> None:
        """Write bytes (any array / bytes-like; its raw little-endian bytes) at a byte address."""
        buf = bytes(data) if isinstance(data, (bytes, bytearray)) else \
            np.ascontiguousarray(data).tobytes()
        check_window(self.config, addr, len(buf))
        self._write_bytes(addr, buf)
        self.link.bytes_to_device += len(buf)
        self.link.transactions += 1

    def read_mem(self, addr: int, nbytes: int) -> np.ndarray:
        """-> uint8[nbytes]."""
        check_window(self.config, addr, nbytes)
        out = self._read_bytes(addr, nbytes)
        self.link.bytes_from_device += nbytes
        self.link.transactions += 1
        return out

    def write_program(self, words: np.ndarray, start_pc: int = 0) -> None:
        """words: uint32[n, 8] from isa.encode_program; placed at instruction ``start_pc``."""
        words = program_words(words)
        self.write_mem(IMEM_BASE + start_pc * INSN_BYTES, words.reshape(-1))
        self._set_start_pc(start_pc)
        self.link.transactions += 1   # the START_PC register write
        self.start_pc = start_pc

    def run(self, max_cycles: int | None = None) -> Counters:
        """Run from start_pc to HALT within ``max_cycles`` (default DEFAULT_MAX_CYCLES)."""
        max_cycles = DEFAULT_MAX_CYCLES if max_cycles is None else max_cycles
        check_max_cycles(max_cycles)
        self.link.transactions += 2   # start doorbell + completion status
        self._counters = self._run_program(max_cycles)
        return self._counters

    def counters(self) -> Counters:
        return self._counters
