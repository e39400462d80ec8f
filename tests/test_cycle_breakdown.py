"""Cycles by unit under overlap (benchmarks/hw/cycle_breakdown.py) and the tables and plot data
built on it, from hand-made counter sets whose split was derived by hand. No simulator runs."""
import pytest

from benchmarks.hw import cycle_breakdown as cb
from benchmarks.hw.bench_block import to_markdown as block_markdown
from benchmarks.hw.config_compare import plot_segments, to_markdown as compare_markdown
from hw_offload.cycle_model import CycleCounts, _count_overlap
from hw_offload.device_counters import Counters

# A 20-cycle run, drawn by hand (cycle: busy units):
#   0-1 none | 2-5 DMA | 6-7 DMA+array | 8-9 DMA+array+vector | 10-13 array+vector |
#   14-15 vector | 16-19 none
# each unit busy 8 cycles; none 6, exactly one 4 + 2 = 6, two 2 + 4 = 6, three 2;
# overlap (>= 2) = 8, all_busy = 2; 6 + 24 - 8 - 2 = 20.
SPANS = {"dma_busy": (2, 9), "array_busy": (6, 13), "vector_busy": (8, 15)}
HAND = Counters(cycles=20, array_busy=8, vector_busy=8, dma_busy=8, stall=6, overlap=8,
                all_busy=2, bytes_in=64, bytes_out=0, instructions=4)
# the same busy counts from a build that does not report overlap (a sequential run: 30 cycles)
OLD = Counters(cycles=30, array_busy=8, vector_busy=8, dma_busy=8, stall=6)


def test_the_hand_drawn_run_agrees_with_the_cycle_models_span_counting():
    """The hand derivation above, re-derived independently by the cycle model's sweep."""
    c = CycleCounts(cycles=20, array_busy=8, vector_busy=8, dma_busy=8)
    _count_overlap(c, list(SPANS.values()))
    assert (c.stall, c.overlap, c.all_busy) == (HAND.stall, HAND.overlap, HAND.all_busy)


def test_breakdown_of_a_run_with_overlap():
    b = cb.breakdown(HAND)
    assert b["by_busy_units"] == {"none": 6, "one": 6, "two": 6, "three": 2}
    assert sum(b["by_busy_units"].values()) == b["cycles"] == 20
    assert b["utilization"] == {"array_busy": 0.4, "vector_busy": 0.4, "dma_busy": 0.4}
    assert b["busy_any"] == 14
    assert cb.md_cells(HAND) == ["20", "8 (40%)", "8 (40%)", "8 (40%)", "8 (40%)", "2 (10%)",
                                 "6 (30%)"]
    assert cb.summary(HAND) == ("20 cycles: array 40%, vector 40%, DMA 40% busy; ≥2 units 40%, "
                                "all 3 10%, stall 30%")


def test_plot_stack_adds_up_to_the_total_and_unit_bars_are_the_busy_counts():
    segs = plot_segments(cb.breakdown(HAND))
    stack = [(bottom, h, k) for _, bottom, h, k in segs if k in cb.BY_BUSY_UNITS]
    assert stack == [(0, 6, "none"), (6, 6, "one"), (12, 6, "two"), (18, 2, "three")]
    units = {k: (bottom, h) for _, bottom, h, k in segs if k in cb.BUSY}
    assert units == {"array_busy": (0, 8), "vector_busy": (0, 8), "dma_busy": (0, 8)}
    assert len({dx for dx, *_ in segs}) == 4          # one stacked bar and three beside it


@pytest.mark.parametrize("bad,why", [
    (dict(cycles=21), "cycles 21 != .* = 20"),                       # a stale total
    (dict(cycles=27, overlap=1, all_busy=2), "all_busy <= overlap"),  # identity holds, split not
    (dict(all_busy=None), "both be reported"),                        # half an overlap set
    (dict(stall=-1, cycles=13), "non-negative"),
    (dict(cycles=18, stall=6, array_busy=14, vector_busy=0, dma_busy=2, overlap=2, all_busy=2),
     "a unit busy longer"),                  # 14 busy cycles in a run with 12 not stalled
    # identity and split fine (one 5, two 0, three 5), but all three units busy for 5 cycles
    # while the vector unit never was
    (dict(cycles=10, stall=0, array_busy=10, vector_busy=0, dma_busy=10, overlap=5, all_busy=5),
     "all_busy above"),
])
def test_a_contradictory_counter_set_is_refused(bad, why):
    c = {**HAND.to_dict(), **bad}
    with pytest.raises(cb.CounterSetError, match=why):
        cb.check(c)
    with pytest.raises(cb.CounterSetError):     # and nothing is drawn or tabulated from it
        cb.md_cells(c)
    with pytest.raises(cb.CounterSetError):
        plot_segments(c)


def test_counters_without_overlap_show_na_not_zero():
    assert Counters().overlap is None and Counters().all_busy is None   # the default is "unknown"
    b = cb.breakdown(OLD)
    assert b["overlap"] is None and b["all_busy"] is None
    assert b["by_busy_units"] == {"none": 6, "one": None, "two": None, "three": None}
    cells = cb.md_cells(OLD)
    assert cells[4:6] == ["n/a", "n/a"] and "0" not in cells[4:6]
    assert "≥2 units n/a, all 3 n/a" in cb.summary(OLD)
    stack = [(bottom, h, k) for _, bottom, h, k in plot_segments(b) if k not in cb.BUSY]
    assert stack == [(0, 6, "none"), (6, 24, "busy_any")]
    # without overlap the identity cannot be checked, but its bounds still can
    with pytest.raises(cb.CounterSetError, match="overlap not reported"):
        cb.check({**OLD.to_dict(), "cycles": 13})        # < stall + max(busy)
    with pytest.raises(cb.CounterSetError, match="overlap not reported"):
        cb.check({**OLD.to_dict(), "cycles": 31})        # > stall + sum(busy)
    # the golden model has no clock: refused, call sites show n/a before asking
    with pytest.raises(cb.CounterSetError, match="no clock"):
        cb.check(Counters(cycles=None, array_busy=None, vector_busy=None, dma_busy=None,
                          stall=None))


def test_sum_of_runs_checks_each_and_loses_overlap_if_one_lacks_it():
    two = cb.sum_counters([HAND, HAND])
    assert (two["cycles"], two["overlap"], two["all_busy"]) == (40, 16, 4)
    assert cb.sum_counters([HAND, OLD])["overlap"] is None
    # a bad run plus a compensating one would sum to a consistent total: each is checked first
    plus, minus = {**HAND.to_dict(), "cycles": 21}, {**HAND.to_dict(), "cycles": 19}
    with pytest.raises(cb.CounterSetError):
        cb.sum_counters([plus, minus])


def _machine():
    return {"device_name": "cpu", "host": "h", "torch": "t", "git_sha": "g", "python": "p"}


def test_config_compare_table_shows_busy_shares_and_overlap():
    est = {"status": "estimated", "cycles": cb.breakdown(HAND), "target": "cycle_model",
           "counter_source": "hand", "total_ms": 2.0, "compute_ms": 1.5, "link_ms": 0.5,
           "speedup_vs_v1": 1.0, "pe_utilization": 0.25, "host_link_share": 0.25,
           "weights": "resident"}
    old = dict(est, cycles=cb.breakdown(OLD), target="verilator")
    res = {"machine": _machine(), "load_average_start": (0, 0, 0), "load_average_end": (0, 0, 0),
           "link": "l", "configs": [],
           "steps": [{"preset": "chip16", "mode": "prefill", "batch": 1, "seq_len": 16,
                      "v1_measured_ms": {"median": 2.0}, "configs": {"x": est, "old": old}}]}
    md = compare_markdown(res)
    assert ("| chip16 | prefill | 1 | x | 20 | 8 (40%) | 8 (40%) | 8 (40%) | 8 (40%) | "
            "2 (10%) | 6 (30%) |") in md
    assert ("| chip16 | prefill | 1 | old | 30 | 8 (27%) | 8 (27%) | 8 (27%) | n/a | n/a | "
            "6 (20%) |") in md
    res["steps"][0]["configs"]["x"]["cycles"] = {**HAND.to_dict(), "cycles": 21}
    with pytest.raises(cb.CounterSetError):
        compare_markdown(res)


def test_block_table_shows_busy_shares_and_overlap():
    p = {"preset": "chip16", "seq_len": 16, "hidden": 16, "counters": HAND.to_dict(),
         "block_time_us_at_clock": 0.1, "rtl_equals_golden": True, "sim_wall_s": 1.0,
         "sim_cycles_per_s": 20.0, "gemms": [], "weight_load_counters": {"cycles": 5,
                                                                          "bytes_in": 64}}
    res = {"machine": _machine(), "clock_mhz": 200.0, "build_flags": "-O3", "n": 16,
           "presets": [p], "v1_chip16_cpu": {"ms_per_sample_median": 1.0, "repeats": "1 x 1"}}
    md = block_markdown(res)
    assert ("| chip16 | 16 | 16 | 20 | 8 (40%) | 8 (40%) | 8 (40%) | 8 (40%) | 2 (10%) | "
            "6 (30%) | 64/0 |") in md
    p["counters"] = OLD.to_dict()
    assert "| 30 | 8 (27%) | 8 (27%) | 8 (27%) | n/a | n/a | 6 (20%) |" in block_markdown(res)
