"""ctypes driver for the Verilated accelerator (the cycle-accurate simulator).

    acc = Accelerator()                 # builds (or reuses) the cached library (chip16)
    acc = Accelerator(config="fpga32")  # another configuration: its own cached build
    acc.write_mem(addr, data)           # DRAM bytes; instructions via write_program
    acc.set_memory_timing(100, 16)      # DRAM latency (cycles) and bandwidth (bytes/cycle)
    counters = acc.run(max_cycles=...)  # raises AcceleratorError / CycleLimitError
    acc.read_mem(addr, nbytes)

Bounds are checked by device.HostPort (shared with the golden model) against the sizes the RTL
reports in its registers, and again in the C++ harness, so bad input raises an exception
instead of crashing the interpreter. The harness reaches registers and instruction memory
over the accelerator's AXI4-Lite port, waits for a run on its irq line, and holds DRAM itself
(the memory model behind the accelerator's AXI4 master port).
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .build import build_config
from .configs import AccelConfig, resolve
from .device import HostPort, check_max_cycles  # noqa: F401  (check_max_cycles: re-exported)
from .device_counters import Counters
from .errors import AcceleratorError, AddressError, ConfigMismatchError, CycleLimitError
from .mem_timing import MemoryTiming
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
        lib.accel_trace_format.argtypes = []
        lib.accel_trace_format.restype = ctypes.c_char_p
        lib.accel_set_memory_timing.argtypes = [vp, u64, u64]
        lib.accel_irq.argtypes = [vp]
        _LIBS[key] = lib
    return _LIBS[key]


# A build writes one waveform format (Verilator --trace-fst or --trace); the file's extension
# picks the build variant that writes it.
TRACE_VARIANTS = {".fst": "test", ".vcd": "vcd"}


def trace_variant(path: str | Path) -> str:
    """The build variant whose trace() writes ``path``: "test" for *.fst, "vcd" for *.vcd."""
    suffix = Path(path).suffix.lower()
    if suffix not in TRACE_VARIANTS:
        raise ValueError(f"trace file {path}: name it *.fst or *.vcd (the extension picks the "
                         "waveform format)")
    return TRACE_VARIANTS[suffix]


class Accelerator(HostPort):
    """One simulated accelerator instance (a device.Device). ``variant``: "test" (assertions,
    FST tracing), "vcd" (assertions, VCD tracing) or "fast"; ``trace_variant(path)`` picks the
    one that can write a given waveform file. ``config``: the accelerator configuration (a
    configs.AccelConfig or a name; default chip16), built and cached per configuration.

    The sizes the build reports in its registers must equal ``config.hw()``; a library that is
    not that configuration's build (``lib_path``) raises ConfigMismatchError."""

    def __init__(self, variant: str = "test", lib_path: str | Path | None = None,
                 config: AccelConfig | str | None = None):
        super().__init__()
        self.variant = variant
        self.accel_config: AccelConfig = resolve(config)
        self._lib = _load(Path(lib_path) if lib_path else build_config(self.accel_config, variant))
        self._h = self._lib.accel_create()
        if not self._h:
            raise RuntimeError("accel_create returned NULL")
        r = self.read_reg
        self.config = HwConfig(n=r(REG_N), a_rows=r(REG_A_ROWS), w_rows=r(REG_W_ROWS),
                               acc_rows=r(REG_ACC_ROWS), dram_bytes=r(REG_DRAM_BYTES),
                               imem_depth=r(REG_IMEM_DEPTH))
        want = self.accel_config.hw()
        if self.config != want:
            lib = self._lib._name
            self.close()
            raise ConfigMismatchError(
                f"the Verilator build {lib} reports {self.config}, but configuration "
                f"{self.accel_config.name!r} needs {want}: open it with "
                f"Accelerator(config=...) of the configuration it was built for")
        # the off-chip memory behind the AXI4 port runs at the configuration's timing
        self.set_memory_timing(self.accel_config.mem_latency_cycles,
                               self.accel_config.mem_bytes_per_cycle)

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
    # HostPort's checks and link accounting run before and after these raw transfers.
    def _write_bytes(self, addr: int, buf: bytes) -> None:
        if self._lib.accel_write_mem(self._handle(), addr, buf, len(buf)) != 0:
            raise AddressError(self._error())

    def _read_bytes(self, addr: int, nbytes: int) -> np.ndarray:
        out = np.zeros(nbytes, dtype=np.uint8)
        if self._lib.accel_read_mem(self._handle(), addr, out.ctypes.data, nbytes) != 0:
            raise AddressError(self._error())
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

    def _set_start_pc(self, start_pc: int) -> None:
        self.write_reg(REG_START_PC, start_pc)

    @property
    def irq(self) -> bool:
        """The accelerator's done line: high from the end of a run until the next start."""
        return bool(self._lib.accel_irq(self._handle()))

    def _set_memory_timing(self, timing: MemoryTiming) -> None:
        if self._lib.accel_set_memory_timing(self._handle(), timing.latency_cycles,
                                             timing.bytes_per_cycle) != 0:
            raise RuntimeError(self._error())

    # ---------------- execution ----------------
    SLICE_CYCLES = 1 << 20   # ~0.5 s of simulation: the Ctrl-C response time

    def _run_program(self, max_cycles: int) -> Counters:
        """HostPort.run's hook: run from START_PC until HALT. Raises AcceleratorError on a malformed instruction and
        CycleLimitError (naming the last pc) if HALT is not reached within max_cycles.

        The simulation is clocked in slices of ``SLICE_CYCLES`` so that Ctrl-C (a Python
        signal, handled only between C calls) stops a long run within a fraction of a second;
        the accelerator is then reset to idle, memories kept, and KeyboardInterrupt re-raised.
        """
        h = self._handle()
        cycles = ctypes.c_uint64()
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

    # ---------------- waveform ----------------
    def trace(self, path: str | Path) -> None:
        """Start writing a waveform of every following cycle to ``path`` (*.fst or *.vcd).

        The build writes one format: "test" FST, "vcd" VCD (``Accelerator(trace_variant(path))``
        opens the right one). Raises ValueError for a name whose extension this build cannot
        write, RuntimeError for a build without tracing ("fast"), and OSError when the file
        cannot be created, all before any cycle runs."""
        path = Path(path)
        fmt = self._lib.accel_trace_format().decode()
        if not fmt:
            raise RuntimeError(f"the {self.variant!r} build has no tracing compiled in; open "
                               f"Accelerator({trace_variant(path)!r}) to write {path}")
        if path.suffix.lower() != "." + fmt:
            raise ValueError(f"trace file {path}: this build ({self.variant!r}) writes "
                             f"{fmt.upper()} waveforms; name it *.{fmt}, or open "
                             f"Accelerator({trace_variant(path)!r}) for {path.suffix or 'no'} files")
        try:
            path.open("wb").close()   # the harness's writer would fail silently
        except OSError as e:
            raise OSError(f"cannot write the waveform to {path}: {e.strerror}") from None
        if self._lib.accel_trace_open(self._handle(), str(path).encode()) != 0:
            raise RuntimeError(self._error())

    def close_trace(self) -> None:
        self._lib.accel_trace_close(self._handle())
