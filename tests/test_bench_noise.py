"""Noise-aware measurement and comparable outputs.

A busy machine is made for real (spinning subprocesses, one per core) and seen by
``benchmarks.noise``; quiet and busy rows are then injected so the table, CSV, plots
and the CLI's warning can be checked without depending on how busy the test machine is.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import pytest

from benchmarks import noise
from benchmarks.compare import Row
from benchmarks.plots import bar_label, time_spread, write_plots
from benchmarks.report import write_reports

QUIET = {"loadavg": [0.1, 0.1, 0.1], "cpu_count": 4, "torch_threads": 4,
         "other_busy_cores": 0.05, "busiest": []}
MACHINE = {"device_name": "CPU: test (4 cores)", "torch": "2.x", "triton": None,
           "git_sha": "abc1234", "device": "cpu", "slug": "cpu-4core"}


def _spinners(n: int, seconds: float) -> list[subprocess.Popen]:
    code = (f"import time\nprint('spinning', flush=True)\nt = time.time()\n"
            f"while time.time() - t < {seconds}: pass\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    for p in procs:             # started (interpreter up) before anything is sampled
        assert p.stdout.readline().strip() == "spinning"
    return procs


def test_busy_processes_are_seen_and_flag_the_measurement():
    cores = os.cpu_count()
    procs = _spinners(cores, 5.0)
    try:
        seen = noise.other_processes_busy(window_s=0.6, top=None)
        snapshot = noise.load_snapshot(window_s=0.6)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    spinning = {u["pid"]: u["cores"] for u in seen["busiest"] if u["pid"] in
                {p.pid for p in procs}}
    # Every spinner was seen, by pid, using CPU. How much each gets depends on what else
    # runs; together with everything else they keep the cores busy, which is what flags.
    assert len(spinning) == cores and min(spinning.values()) > 0.05, seen
    assert seen["other_busy_cores"] >= sum(spinning.values()) - 1e-3
    assert seen["other_busy_cores"] > noise.OTHER_CORES_LIMIT * cores, seen
    assert os.getpid() not in {u["pid"] for u in seen["busiest"]}   # never ourselves
    assert snapshot["cpu_count"] == cores and snapshot["torch_threads"] >= 1
    assert len(snapshot["loadavg"]) == 3
    reasons = noise.busy_reasons({"before": snapshot}, 10.0, 10.5)
    assert any("other processes used" in r for r in reasons), (snapshot, reasons)


def test_quiet_run_is_not_flagged_and_each_busy_sign_is():
    quiet = {"before": QUIET, "after": QUIET}
    assert noise.busy_reasons(quiet, 10.0, 12.0) == []
    assert noise.busy_reasons({}, None, None) == []
    # tight spread but other processes held 3 of 4 cores (the "609 ms, tight p10-p90" case)
    busy = {"before": {**QUIET, "other_busy_cores": 3.0,
                       "busiest": [{"pid": 7, "name": "make", "cores": 3.0}]}, "after": QUIET}
    (reason,) = noise.busy_reasons(busy, 600.0, 610.0)
    assert "3.0 of 4 cores before" in reason and "make" in reason
    (reason,) = noise.busy_reasons(quiet, 10.0, 16.0)
    assert reason.startswith("spread p90/p10 1.60")
    loaded = {"after": {**QUIET, "loadavg": [7.0, 3.0, 1.0]}}
    (reason,) = noise.busy_reasons(loaded, 10.0, 10.1)
    assert reason == "load average 7.0 on 4 cores after"


def test_warning_line_is_one_line_and_only_when_busy():
    assert noise.warning_line([("v1 tiny/train", []), ("v2 tiny/train", [])]) is None
    line = noise.warning_line([("v1 tiny/train", []), ("v2 tiny/decode", ["spread x"]),
                               ("v1 tiny/decode", ["load y"])])
    assert "\n" not in line and "2 measurement(s)" in line and "v2 tiny/decode: spread x" in line


def _rows(busy: bool) -> list[Row]:
    stamp = {"machine": "cpu-4core", "torch": "2.x", "triton": None, "git_sha": "abc1234",
             "timestamp": "2026-01-01T00:00:00+0000", "quick": True}
    v1 = Row("v1", "tiny", "train", "ok", dtype="fp32", batch_size=2, seq_len=8,
             median_ms=10.0, p10_ms=9.0, p90_ms=12.0, repeats=5, tokens_per_s=1600.0,
             speedup_vs_v1=1.0, load={"before": QUIET, "after": QUIET}, **stamp)
    v2 = Row("v2", "tiny", "train", "ok", dtype="fp32", batch_size=2, seq_len=8,
             median_ms=5.0, p10_ms=4.0, p90_ms=8.0, repeats=5, tokens_per_s=3200.0,
             speedup_vs_v1=2.0, busy=["spread p90/p10 2.00 > 1.5"] if busy else [], **stamp)
    rtl = Row("rtl", "tiny", "train", "estimated", "at 200 MHz", median_ms=20.0,
              speedup_vs_v1=0.5, estimated_compute_ms=19.0, estimated_transfer_ms=1.0,
              extra={"clock_mhz": 200.0}, **stamp)
    return [v1, v2, rtl]


def test_table_csv_json_carry_busy_flags_and_comparable_fields(tmp_path):
    rows = _rows(busy=True)
    paths = write_reports(rows, MACHINE, tmp_path, {"presets": ["tiny"], "modes": ["train"],
                                                    "quick": True})
    table = paths["md"].read_text()
    heading = table.splitlines()[0]
    assert "SMOKE RUN (--quick)" in heading
    v2_line = next(line for line in table.splitlines() if line.startswith("| v2 |"))
    assert "BUSY machine: spread p90/p10 2.00" in v2_line
    assert "BUSY" not in next(line for line in table.splitlines() if line.startswith("| v1 |"))
    with paths["csv"].open() as f:
        csv_rows = list(csv.DictReader(f))
    for record in csv_rows:
        assert record["machine"] == "cpu-4core" and record["git_sha"] == "abc1234"
        assert record["torch"] == "2.x" and "triton" in record
        assert record["timestamp"].startswith("2026-01-01") and record["quick"] == "True"
    assert csv_rows[1]["busy"] == "spread p90/p10 2.00 > 1.5" and csv_rows[0]["busy"] == ""
    data = json.loads(paths["json"].read_text())
    assert data["rows"][0]["load"]["before"]["cpu_count"] == 4
    assert data["rows"][1]["quick"] is True and data["rows"][1]["busy"]
    # read back (as `python -m benchmarks plot` does): the same rows
    assert [Row.from_json(r) for r in data["rows"]] == rows


def test_full_run_heading_does_not_say_smoke(tmp_path):
    paths = write_reports(_rows(busy=False), MACHINE, tmp_path,
                          {"presets": ["tiny"], "modes": ["train"], "quick": False})
    table = paths["md"].read_text()
    assert "SMOKE" not in table and "BUSY machine" not in table


def test_old_results_json_without_the_new_fields_still_loads():
    record = {k: v for k, v in _rows(busy=False)[0].to_json().items()
              if k not in ("load", "busy", "machine", "torch", "triton", "git_sha",
                           "timestamp", "quick")}
    row = Row.from_json(record)
    assert row.busy == [] and row.load == {} and row.quick is False


def test_plots_mark_busy_and_estimated_bars_and_draw_spreads(tmp_path):
    v1, v2, rtl = _rows(busy=True)
    assert bar_label(v1) == "v1" and bar_label(v2) == "v2\nBUSY"
    assert bar_label(rtl) == "rtl\nestimated"
    # speedup 2.0 at median 5 ms, p10 4 / p90 8 -> 2*5/8 = 1.25 .. 2*5/4 = 2.5
    assert time_spread(v2, 2.0) == pytest.approx((0.75, 0.5))
    assert time_spread(rtl, 0.5) is None            # an estimate has no repeats
    made = write_plots([v1, v2, rtl], tmp_path, MACHINE["device_name"])
    assert {p.name for p in made} == {"speedup.png", "rtl_compute_vs_transfer.png"}
