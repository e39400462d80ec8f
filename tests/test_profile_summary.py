"""One run, one speed ranking (issue 19, item 2): the profiling summary cites the
side-by-side harness's times and never prints the profilers' own, separately timed runs;
its achieved GFLOP/s divides one FLOP count (the workload's, counted on v1) by each time."""
import json

import pytest

from benchmarks.profiling.summary import CITED_COLUMNS, load_harness, write_summary

MACHINE = {"device_name": "CPU: test", "torch": "2.x", "triton": None, "git_sha": "abc"}
WORKLOAD_FLOPS = 7_340_032_000          # counted once on v1: the same for every version


def _harness_row(version, median, p10, p90, speedup, **kw):
    row = {"version": version, "preset": "tiny", "mode": "train", "status": "ok", "detail": "",
           "dtype": "fp32", "batch_size": 4, "seq_len": 64, "median_ms": median,
           "p10_ms": p10, "p90_ms": p90, "tokens_per_s": 256 / (median / 1e3),
           "speedup_vs_v1": speedup, "workload_flops": WORKLOAD_FLOPS,
           "achieved_flops_per_s": WORKLOAD_FLOPS / (median / 1e3), "busy": []}
    row.update(kw)
    return row


def _profiled(version, own_median, own_flops, **kw):
    """A profile record as profile_version returns it; its own median disagrees with the
    harness on purpose (these separate runs ranked compile behind v1 in issue 19)."""
    result = {"version": version, "preset": "tiny", "mode": "train", "dtype": "fp32",
              "batch_size": 4, "seq_len": 64, "machine": MACHINE,
              "step_time_ms": {"median": own_median, "p10": own_median, "p90": own_median},
              "tokens_per_s": 256 / (own_median / 1e3), "peak_memory_bytes": 3 * 2**20,
              "kernel_launches_per_step": None, "ops_per_step": 123}
    result.update(kw)
    return {"version": version, "result": result, "block_ms": {"attention": 1.5},
            "flops": {"step_flops": own_flops, "deepspeed_forward_flops": None,
                      "peak": "none: no known peak"}, "steps": []}


def _table(md: str) -> dict[str, dict[str, str]]:
    """The summary's first Markdown table as {version: {column: cell}}."""
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header, cells)) for cells in
            ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}


@pytest.fixture
def harness(tmp_path):
    rows = [_harness_row("v1", 66.71, 65.02, 69.40, 1.0),
            _harness_row("v2", 41.33, 40.87, 44.12, 1.61),
            _harness_row("compile", 53.79, 52.10, 57.66, 1.24)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"machine": MACHINE, "settings": {}, "rows": rows}))
    return rows, load_harness(path)


def test_summary_times_are_the_harness_times_and_one_flop_count(tmp_path, harness):
    rows, cited = harness
    # Own runs: compile slower than v1, v2 counts fewer FLOPs than v1 (fused ops).
    profiles = [_profiled("v1", 82.86, WORKLOAD_FLOPS), _profiled("v2", 60.17, 6_900_000_000),
                _profiled("compile", 85.52, WORKLOAD_FLOPS)]
    md = write_summary(tmp_path, profiles, {}, cited).read_text()
    table = _table(md)
    median, spread, gflops = (f"{CITED_COLUMNS[0]} *", f"{CITED_COLUMNS[1]} *",
                              f"{CITED_COLUMNS[4]} *")
    for row in rows:
        cells = table[row["version"]]
        assert cells[median] == f"{row['median_ms']:.2f}"
        assert cells[spread] == f"{row['p10_ms']:.2f}–{row['p90_ms']:.2f}"
        assert float(cells[gflops]) == pytest.approx(
            WORKLOAD_FLOPS / (row["median_ms"] / 1e3) / 1e9, abs=0.05)
    for own in ("82.86", "60.17", "85.52"):     # the separately timed runs never appear
        assert own not in md
    # Achieved GFLOP/s ranks exactly like the cited speed.
    by_time = sorted(table, key=lambda v: float(table[v][median]))
    by_rate = sorted(table, key=lambda v: -float(table[v][gflops]))
    assert by_time == by_rate == ["v2", "compile", "v1"]
    # A version's own count is its own, labelled column.
    assert table["v2"]["own counted GFLOP/step (this version's ops)"] == "6.90"


def test_mismatched_or_missing_harness_rows_are_blank_with_the_reason(tmp_path, harness):
    _, cited = harness
    profiles = [_profiled("v1", 82.86, WORKLOAD_FLOPS, dtype="bf16 (autocast)"),
                _profiled("v3", 90.0, WORKLOAD_FLOPS)]
    md = write_summary(tmp_path, profiles, {}, cited).read_text()
    table = _table(md)
    assert table["v1"][f"{CITED_COLUMNS[0]} *"] == "—" and "the profiler ran" in md
    assert table["v3"][f"{CITED_COLUMNS[0]} *"] == "—" and "v3: not in the harness run" in md
    assert "82.86" not in md and "90.00" not in md


def test_without_a_harness_the_summary_has_no_speed_column(tmp_path):
    md = write_summary(tmp_path, [_profiled("v1", 82.86, WORKLOAD_FLOPS)], {}).read_text()
    header = _table(md)["v1"]
    assert not any(c.startswith(CITED_COLUMNS[0]) for c in header)
    assert "82.86" not in md and "No speed column" in md


def test_a_file_that_is_not_a_harness_result_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"version": "v1"}')
    with pytest.raises(ValueError, match="not a harness results.json"):
        load_harness(bad)
