"""Counters and byte counts -> time. Never runs anything.

Per accelerator call (one device run, model_session.CallRecord):

    compute_s = cycles / clock                           (cycles counted by the Verilator target;
                                                          clock: the configuration's clock_mhz)
    link_s    = transactions * latency + bytes / bandwidth   (bytes counted by the driver)
    total_s   = compute_s + link_s                         (in-order: the host waits for each run)

The cycles already hold the off-chip DRAM's time: every device's memory runs at the
configuration's ``mem_latency_cycles`` / ``mem_bytes_per_cycle`` (``mem_timing.MemoryTiming``:
the Verilator harness's memory model obeys it, and the cycle model of the golden target reads
the same values from the device), so nothing here re-prices DRAM.

PCIe payload bandwidth per lane (after line coding): Gen1 2.5 GT/s x 8/10, Gen2 5 GT/s x 8/10,
Gen3 8 GT/s x 128/130, Gen4 16 GT/s x 128/130, Gen5 32 GT/s x 128/130, Gen6 64 GT/s x 242/256
(FLIT). Protocol overhead (TLP headers) is not modelled; the per-transaction latency stands in
for it and for the doorbell / completion round trips.
"""
from __future__ import annotations

from dataclasses import dataclass

from .configs import AccelConfig
from .device_counters import Counters, LinkCounters

# bytes per second per lane, after encoding
_LANE_BYTES_PER_S = {1: 2.5e9 * 8 / 10 / 8, 2: 5e9 * 8 / 10 / 8, 3: 8e9 * 128 / 130 / 8,
                     4: 16e9 * 128 / 130 / 8, 5: 32e9 * 128 / 130 / 8, 6: 64e9 * 242 / 256 / 8}


@dataclass(frozen=True)
class HostLink:
    """A PCIe link: generation, lanes, and a fixed latency per transaction."""

    gen: int = 4
    lanes: int = 4
    latency_ns: float = 500.0

    def __post_init__(self):
        if self.gen not in _LANE_BYTES_PER_S:
            raise ValueError(f"PCIe generation must be one of {sorted(_LANE_BYTES_PER_S)}, got {self.gen}")
        if self.lanes not in (1, 2, 4, 8, 16):
            raise ValueError(f"PCIe lanes must be 1, 2, 4, 8 or 16, got {self.lanes}")
        if self.latency_ns < 0:
            raise ValueError(f"latency_ns must be >= 0, got {self.latency_ns}")

    @property
    def bytes_per_s(self) -> float:
        return _LANE_BYTES_PER_S[self.gen] * self.lanes

    def label(self) -> str:
        return f"PCIe Gen{self.gen} x{self.lanes}, {self.latency_ns:g} ns/transaction"

    def seconds(self, link: LinkCounters) -> float:
        """Time to move ``link``'s bytes in ``link.transactions`` transactions."""
        return (link.transactions * self.latency_ns * 1e-9
                + (link.bytes_to_device + link.bytes_from_device) / self.bytes_per_s)


@dataclass(frozen=True)
class CallCost:
    """The cost of one accelerator call (or a sum of calls)."""

    bytes_to_device: int
    bytes_from_device: int
    transactions: int
    cycles: int | None
    compute_s: float | None
    link_s: float

    @property
    def total_s(self) -> float | None:
        return None if self.compute_s is None else self.compute_s + self.link_s

    def __add__(self, o: "CallCost") -> "CallCost":
        both = self.cycles is not None and o.cycles is not None
        return CallCost(self.bytes_to_device + o.bytes_to_device,
                        self.bytes_from_device + o.bytes_from_device,
                        self.transactions + o.transactions,
                        self.cycles + o.cycles if both else None,
                        self.compute_s + o.compute_s if both else None, self.link_s + o.link_s)

    def to_dict(self) -> dict:
        return {"bytes_to_device": self.bytes_to_device, "bytes_from_device": self.bytes_from_device,
                "transactions": self.transactions, "cycles": self.cycles,
                "compute_s": self.compute_s, "link_s": self.link_s, "total_s": self.total_s}


ZERO = CallCost(0, 0, 0, 0, 0.0, 0.0)


def clock_hz(clock: AccelConfig | float) -> float:
    """The pricing clock in Hz: an accelerator configuration's ``clock_mhz``, or Hz given as is."""
    return clock.clock_mhz * 1e6 if isinstance(clock, AccelConfig) else clock


def call_cost(counters: Counters, link: LinkCounters, clock: AccelConfig | float,
              host: HostLink) -> CallCost:
    """Price one run at ``clock`` (a configuration, whose clock_mhz prices it, or Hz).
    ``counters.cycles`` is None on the golden target: compute time unknown."""
    clock_hz_ = clock_hz(clock)
    if not clock_hz_ > 0:
        raise ValueError(f"clock must be positive, got {clock_hz_} Hz")
    cycles = counters.cycles
    return CallCost(link.bytes_to_device, link.bytes_from_device, link.transactions, cycles,
                    None if cycles is None else cycles / clock_hz_, host.seconds(link))


def total_cost(records, clock: AccelConfig | float, host: HostLink) -> CallCost:
    """Sum of call_cost over model_session.CallRecord-like objects (``.counters``, ``.link``)."""
    total = ZERO
    for r in records:
        total = total + call_cost(r.counters, r.link, clock, host)
    return total

