"""Performance counters read back after a run (RTL: registers 0x10..0x1F)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    """Cycle counters are None for the golden model, which has no clock.

    ``cycles`` counts every cycle from start to done; ``array_busy``, ``vector_busy`` and
    ``dma_busy`` count cycles each unit was active; ``stall`` counts cycles in which none was
    (fetch, decode and hand-over overhead of the in-order controller). Bytes are DMA traffic
    between DRAM and the SRAMs: ``bytes_in`` DRAM->SRAM, ``bytes_out`` SRAM->DRAM.
    """

    cycles: int | None = 0
    array_busy: int | None = 0
    vector_busy: int | None = 0
    dma_busy: int | None = 0
    stall: int | None = 0
    bytes_in: int = 0
    bytes_out: int = 0
    instructions: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
