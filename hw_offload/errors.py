"""Exceptions raised at the hardware boundary (driver and golden model share them)."""
from __future__ import annotations

from .isa import ERROR_NAMES


class AcceleratorError(RuntimeError):
    """The accelerator stopped on a malformed instruction. ``code``/``pc`` say which and where."""

    def __init__(self, code: int, pc: int, insn: str = ""):
        self.code, self.pc = code, pc
        what = ERROR_NAMES.get(code, f"unknown error code {code}")
        detail = f": {insn}" if insn else ""
        super().__init__(f"accelerator error {code} ({what}) at pc {pc}{detail}")


class CycleLimitError(TimeoutError):
    """The program did not finish within the cycle (or instruction) limit."""

    def __init__(self, limit: int, pc: int):
        self.limit, self.pc = limit, pc
        super().__init__(f"accelerator still running after {limit} cycles; last pc = {pc}. "
                         "Raise max_cycles or check the program for a missing HALT.")


class AddressError(ValueError):
    """A host access outside DRAM / instruction memory, or misaligned."""


class SramFitError(ValueError):
    """The model (or this batch / sequence) does not fit the accelerator build's SRAMs."""


class KvCapacityError(SramFitError):
    """A sequence outgrows the KV positions per sequence that the session was planned for."""


class ConfigMismatchError(ValueError):
    """A device whose sizes (registers) are not those of the configuration asked for."""
