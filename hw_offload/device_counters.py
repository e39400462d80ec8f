"""What one device run reports: performance counters (RTL: registers 0x10..0x23) and host-link traffic."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    """Cycle counters are None for the golden model, which has no clock.

    ``cycles`` counts every cycle from start to done; ``array_busy``, ``vector_busy`` and
    ``dma_busy`` count cycles each unit was active; ``stall`` counts cycles in which none was
    (fetch, decode and hand-over overhead of the controller, hazard waits with nothing else
    running, and waits for DRAM write responses); ``overlap`` counts cycles in which two or
    more units were active and ``all_busy`` those in which all three were, so
    ``cycles == stall + array_busy + vector_busy + dma_busy - overlap - all_busy``
    (``cycles_from_units``; cycle_model.run_cycles, ISA.md "Overlap"). Bytes are DMA traffic
    between DRAM and the SRAMs: ``bytes_in`` DRAM->SRAM, ``bytes_out`` SRAM->DRAM.
    """

    cycles: int | None = 0
    array_busy: int | None = 0
    vector_busy: int | None = 0
    dma_busy: int | None = 0
    stall: int | None = 0
    overlap: int | None = None      # None: not reported (the golden model, or an RTL build
    all_busy: int | None = None     # without these registers), shown as n/a, never as 0
    bytes_in: int = 0
    bytes_out: int = 0
    instructions: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def cycles_from_units(self) -> int:
        """``stall + array_busy + vector_busy + dma_busy - overlap - all_busy``: a device's
        ``cycles`` equals it (a cycle with k busy units adds k to the busy sums, 1 to ``overlap``
        for k >= 2 and 1 more to ``all_busy`` for k = 3). Counters of the golden model (None)
        have no such sum."""
        return (self.stall + self.array_busy + self.vector_busy + self.dma_busy - self.overlap
                - self.all_busy)


@dataclass
class LinkCounters:
    """Host-link traffic, counted by the driver (and identically by the golden model).

    ``bytes_to_device`` / ``bytes_from_device``: payload of host writes / reads of device memory
    (DRAM and instruction memory). ``transactions``: host-initiated transfers: one per memory
    write or read, one per START_PC write, and two per run (the start doorbell and the
    completion status read). Counter and status reads made only for instrumentation are not
    counted: a production driver would not make them on every call.
    """

    bytes_to_device: int = 0
    bytes_from_device: int = 0
    transactions: int = 0

    def copy(self) -> "LinkCounters":
        return LinkCounters(self.bytes_to_device, self.bytes_from_device, self.transactions)

    def __sub__(self, other: "LinkCounters") -> "LinkCounters":
        return LinkCounters(self.bytes_to_device - other.bytes_to_device,
                            self.bytes_from_device - other.bytes_from_device,
                            self.transactions - other.transactions)

    def __add__(self, other: "LinkCounters") -> "LinkCounters":
        return LinkCounters(self.bytes_to_device + other.bytes_to_device,
                            self.bytes_from_device + other.bytes_from_device,
                            self.transactions + other.transactions)

    def to_dict(self) -> dict:
        return asdict(self)
