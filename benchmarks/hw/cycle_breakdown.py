"""Counted cycles by unit, read correctly when the units run at once.

A device run's clocked counters (``hw_offload.device_counters.Counters``): ``cycles`` from start
to done; ``array_busy``, ``vector_busy``, ``dma_busy``, the cycles each unit was busy; ``stall``,
the cycles in which no unit was; ``overlap``, those in which two or more were; ``all_busy``,
those in which all three were. With the DMA engine, the array and the vector unit working
concurrently, the busy counts no longer add up to ``cycles``: a cycle in which k units are busy
is counted k times by them, and once by ``overlap`` (k >= 2) and once more by ``all_busy``
(k = 3), so

    cycles = stall + array_busy + vector_busy + dma_busy - overlap - all_busy

and the cycles split by how many units were busy (each cycle in exactly one class):

    none = stall,  one = cycles - stall - overlap,  two = overlap - all_busy,  three = all_busy.

``check`` refuses a counter set that breaks this (a stale register, counters of two different
runs mixed, a unit counted twice): such a set must fail loudly, not become a plausible table.
A counter set whose ``overlap`` / ``all_busy`` are None (``Counters``' default: a device or a
stored result that does not report them, such as the sequential RTL before the overlapping
controller) is shown as "n/a" there, never as a measured 0; the golden model (no clock) has no
clocked counters at all.

Per-unit utilization is ``busy / cycles``: the share of the run's time that unit worked.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from hw_offload.device_counters import Counters

BUSY = ("array_busy", "vector_busy", "dma_busy")
CLOCKED = ("cycles", *BUSY, "stall", "overlap", "all_busy")
UNIT_LABEL = {"array_busy": "array", "vector_busy": "vector", "dma_busy": "DMA"}
# cycles by how many units were busy; the four classes add up to ``cycles``
BY_BUSY_UNITS = ("none", "one", "two", "three")
NA = "n/a"


class CounterSetError(ValueError):
    """A counter set that is not one consistent run (see the module docstring)."""


def _as_dict(counters) -> dict:
    return dict(counters) if isinstance(counters, Mapping) else counters.to_dict()


def overlap_reported(c: Mapping) -> bool:
    """True when the set carries ``overlap`` and ``all_busy`` (both, or it is refused)."""
    have = [c.get(k) is not None for k in ("overlap", "all_busy")]
    if have[0] != have[1]:
        raise CounterSetError(f"overlap and all_busy must both be reported or both be None, got "
                              f"overlap={c.get('overlap')!r}, all_busy={c.get('all_busy')!r}")
    return have[0]


def check(counters) -> dict:
    """Validate one run's (or a sum of runs') clocked counters; return them as a dict with the
    keys of ``CLOCKED`` (``overlap`` / ``all_busy`` None when not reported).

    ``counters``: a ``Counters``, a ``CycleCounts`` or a dict with at least ``cycles``, the three
    busy counters and ``stall`` (non-negative ints). Raises ``CounterSetError`` when the set has
    no clock (golden model: call sites show n/a before calling this), when a counter is missing
    or negative, or when the counters contradict each other:

    * with overlap reported: the identity above, and every class of the split non-negative
      (0 <= all_busy <= overlap <= cycles - stall), no unit busy longer than the cycles in which
      any unit was busy (``cycles - stall``), ``all_busy`` no longer than the least busy unit;
    * without it: what the identity still implies for an unknown overlap,
      ``stall + max(busy) <= cycles <= stall + sum(busy)``.
    """
    c = _as_dict(counters)
    missing = [k for k in CLOCKED[:5] if k not in c]
    if missing:
        raise CounterSetError(f"counter set lacks {missing}; expected the keys {list(CLOCKED)}")
    if c["cycles"] is None:
        raise CounterSetError("counter set has no clocked counters (cycles is None: the golden "
                              "model has no clock); use the cycle_model or verilator target")
    out = {k: c.get(k) for k in CLOCKED}
    for k in CLOCKED:
        v = out[k]
        if v is None and k in ("overlap", "all_busy"):
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CounterSetError(f"counter {k} must be a non-negative int, got {v!r} in {out}")
    cycles, stall = out["cycles"], out["stall"]
    busy = [out[k] for k in BUSY]
    if overlap_reported(out):
        ov, allb = out["overlap"], out["all_busy"]
        ident = Counters(**out).cycles_from_units()
        if ident != cycles:
            raise CounterSetError(
                f"counters contradict each other: cycles {cycles} != stall + array_busy + "
                f"vector_busy + dma_busy - overlap - all_busy = {ident} ({out})")
        if not 0 <= allb <= ov <= cycles - stall:
            raise CounterSetError(f"counters contradict each other: need 0 <= all_busy <= overlap "
                                  f"<= cycles - stall, got {out}")
        if max(busy) > cycles - stall:
            raise CounterSetError(f"counters contradict each other: a unit busy longer than the "
                                  f"cycles - stall in which any unit was busy ({out})")
        if allb > min(busy):
            raise CounterSetError(f"counters contradict each other: all_busy above a unit's busy "
                                  f"count ({out})")
    elif not stall + max(busy) <= cycles <= stall + sum(busy):
        raise CounterSetError(
            f"counters contradict each other (overlap not reported): need stall + max(busy) <= "
            f"cycles <= stall + sum(busy), got {out}")
    return out


def sum_counters(sets: Iterable) -> dict:
    """Sum of the clocked counters of several runs, each checked first (so one bad run cannot
    hide in a total); ``overlap`` / ``all_busy`` None if any run lacks them."""
    checked = [check(s) for s in sets]
    if not checked:
        raise CounterSetError("no counter sets to sum")
    total = {k: sum(c[k] for c in checked) for k in CLOCKED[:5]}
    for k in ("overlap", "all_busy"):
        vals = [c[k] for c in checked]
        total[k] = None if any(v is None for v in vals) else sum(vals)
    return check(total)


def breakdown(counters) -> dict:
    """The checked counters plus what a reader needs: ``utilization`` (unit -> busy / cycles)
    and ``by_busy_units`` (none / one / two / three -> cycles; they add up to ``cycles``; one,
    two and three None when overlap is not reported, ``busy_any`` = cycles - stall always)."""
    c = check(counters)
    cycles = c["cycles"]
    out = dict(c)
    out["utilization"] = {k: (c[k] / cycles if cycles else 0.0) for k in BUSY}
    if overlap_reported(c):
        split = [c["stall"], cycles - c["stall"] - c["overlap"], c["overlap"] - c["all_busy"],
                 c["all_busy"]]
    else:
        split = [c["stall"], None, None, None]
    out["by_busy_units"] = dict(zip(BY_BUSY_UNITS, split))
    out["busy_any"] = cycles - c["stall"]
    return out


# ---------------- markdown ----------------
MD_HEAD = ["cycles", "array busy", "vector busy", "DMA busy", "≥2 units busy", "all 3 busy",
           "none busy (stall)"]
MD_NOTE = ("Busy columns: cycles the unit worked and its share of all cycles (its utilization). "
           "Units run concurrently, so the busy shares need not add up to 100 %: "
           "cycles = stall + array + vector + DMA − (≥2 busy) − (all 3 busy), which every row "
           "is checked against. \"n/a\": the counter set does not report overlap (a device or "
           "stored result without those counters); its busy columns then add up to at least "
           "cycles − stall, not to a known split.")


def _pct(v: int | None, cycles: int) -> str:
    """``v`` as a share of ``cycles``: whole percent, "<1%" for a small non-zero share (so it
    does not read as none), "n/a" for a counter that was not reported."""
    if v is None:
        return NA
    share = v / cycles if cycles else 0.0
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def md_cells(counters) -> list[str]:
    """The cells under ``MD_HEAD`` for one counter set (checked)."""
    b = breakdown(counters)
    cyc = b["cycles"]
    share = lambda v: NA if v is None else f"{v} ({_pct(v, cyc)})"  # noqa: E731
    return [str(cyc), *(share(b[k]) for k in BUSY), share(b["overlap"]), share(b["all_busy"]),
            share(b["stall"])]


def summary(counters) -> str:
    """One line for a table's detail column, e.g. "123456 cycles: array 61 %, vector 40 %,
    DMA 22 % busy; ≥2 units 24 %, all 3 2 %, stall 3 %" (shares of all cycles)."""
    b = breakdown(counters)
    pct = lambda k: _pct(b[k], b["cycles"])  # noqa: E731
    return (f"{b['cycles']} cycles: " + ", ".join(f"{UNIT_LABEL[k]} {pct(k)}" for k in BUSY)
            + f" busy; ≥2 units {pct('overlap')}, all 3 {pct('all_busy')}, stall {pct('stall')}")
