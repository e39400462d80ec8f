"""Timing of the off-chip memory (DRAM) behind the accelerator's AXI4 master port.

The one source of the numbers is the configuration (``configs.AccelConfig.mem_latency_cycles``
and ``mem_bytes_per_cycle``); a device is told them with ``set_memory_timing`` (the Verilator
harness's memory model obeys them) and the cycle model reads the same ``MemoryTiming`` back
from the device, so the RTL's counters and their prediction cannot use different memories.

The rules (ISA.md, "DRAM and the AXI4 port"), for a transfer of ``beats`` N-byte beats whose
first burst is requested in the instruction's DECODE cycle:

* a read's first beat arrives ``1 + latency`` cycles after the request, then one beat every
  ``beat_cycles = ceil(N / bytes_per_cycle)`` cycles (at most one beat per cycle);
* a write sends its beats at the same rate from the cycle after the request; writes are
  posted, and the last burst's response comes ``1 + latency`` cycles after its last beat;
* a LOAD, a HALT or a stop waits until every write has been acknowledged.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_LATENCY = 1_000_000   # the harness refuses more (a typo, not a memory)


@dataclass(frozen=True)
class MemoryTiming:
    """Off-chip latency (cycles from a burst request to its first beat, beyond the one AXI
    needs) and bandwidth (bytes per accelerator cycle)."""

    latency_cycles: int = 0
    bytes_per_cycle: int = 16

    def __post_init__(self):
        for name, lo in (("latency_cycles", 0), ("bytes_per_cycle", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"memory timing: {name} must be an int >= {lo}, got {v!r}")
        if self.latency_cycles > MAX_LATENCY:
            raise ValueError(f"memory timing: latency_cycles must be <= {MAX_LATENCY}, "
                             f"got {self.latency_cycles}")

    @classmethod
    def from_config(cls, cfg) -> "MemoryTiming":
        """The timing of a ``configs.AccelConfig``."""
        return cls(cfg.mem_latency_cycles, cfg.mem_bytes_per_cycle)

    def beat_cycles(self, n: int) -> int:
        """Cycles per N-byte beat: the bus moves at most one beat a cycle."""
        return max(1, -(-n // self.bytes_per_cycle))

    def load_busy(self, beats: int, n: int) -> int:
        """DMA busy cycles of a LOAD: from the cycle after the request to the last beat."""
        return 1 + self.latency_cycles + (beats - 1) * self.beat_cycles(n)

    def store_busy(self, beats: int, n: int) -> int:
        """DMA busy cycles of a STORE (its writes are posted: the response is not waited for)."""
        return 1 + (beats - 1) * self.beat_cycles(n)

    @property
    def ack_cycles(self) -> int:
        """Cycles from a STORE's last beat to the first cycle with no write outstanding."""
        return self.latency_cycles + 2


def default_timing() -> MemoryTiming:
    """The default configuration's timing (what a device starts with)."""
    from .configs import DEFAULT, get_config
    return MemoryTiming.from_config(get_config(DEFAULT))
