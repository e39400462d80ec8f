"""No documented command changes a tracked file unless told to.

Each command that writes results runs with its default arguments, its measurement replaced
by canned numbers (the measuring is tested elsewhere; here only *where* things are written
matters), and the repository's tracked files are compared before and after: ``git status``
and the modification time of every tracked file under benchmarks/results/ and every README.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.environment import REPO_ROOT

COMMITTED_HW = REPO_ROOT / "benchmarks" / "results" / "cpu-2core" / "hw"


def _tracked_state() -> tuple[str, dict[str, int]]:
    files = subprocess.run(["git", "ls-files", "benchmarks/results", "*README.md"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return status, {f: (REPO_ROOT / f).stat().st_mtime_ns for f in files}


@contextmanager
def _new_run_folders(kind: str):
    """Yield a function returning the results/<date-time>/<kind> folders made so far; on exit
    check that no tracked file changed, then remove the new folders."""
    results = REPO_ROOT / "results"
    before = set(results.iterdir()) if results.exists() else set()
    state = _tracked_state()
    try:
        yield lambda: [d / kind for d in sorted(set(results.iterdir()) - before)]
        assert _tracked_state() == state, "a tracked file changed"
    finally:
        for new in (set(results.iterdir()) - before) if results.exists() else ():
            shutil.rmtree(new)


def test_benchmarks_run_writes_a_new_run_folder(monkeypatch):
    from benchmarks import __main__ as cli
    from test_bench_noise import _rows
    monkeypatch.setattr(cli, "run_preset", lambda *a, **k: _rows(busy=False))
    with _new_run_folders("bench") as made_so_far:
        assert cli.main(["run", "--versions", "v1,v2", "--presets", "tiny", "--modes", "train",
                         "--quick", "--no-ceilings", "--no-progress"]) == 0
        (folder,) = made_so_far()
        assert (folder / "table.md").is_file() and (folder / "results.json").is_file()


def _committed(name: str) -> dict:
    return json.loads((COMMITTED_HW / name).read_text())


def test_hw_block_bench_writes_a_new_run_folder(monkeypatch):
    from benchmarks.hw import bench_block
    canned = _committed("hw_bench.json")

    class _NoSimulator:        # the Verilator build is not what this test is about
        config = type("Cfg", (), {"n": canned["n"]})

        def __init__(self, variant):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    presets = {p["preset"]: p for p in canned["presets"]}
    monkeypatch.setattr(bench_block, "Accelerator", _NoSimulator)
    monkeypatch.setattr(bench_block, "bench_preset", lambda acc, p, clock: presets[p])
    monkeypatch.setattr(bench_block, "v1_chip16_cpu", lambda: canned["v1_chip16_cpu"])
    with _new_run_folders("hw") as made_so_far:
        bench_block.main([])
        (folder,) = made_so_far()
        assert (folder / "hw_bench.md").is_file()


@pytest.mark.parametrize("update_readme", [False, True])
def test_hw_offload_bench_touches_the_readme_only_when_asked(monkeypatch, update_readme):
    from benchmarks.hw import bench_offload
    presets = {p["preset"]: p for p in _committed("offload_bench.json")["presets"]}
    for p in presets.values():
        for mode in p["modes"].values():
            # The committed run predates the estimate's `device_runs` key (it recorded
            # `runs_per_sequence`); only the shape matters here, not the numbers.
            est = mode.get("estimate") or {}
            if "runs_per_sequence" in est:
                est.setdefault("device_runs", est["runs_per_sequence"])
    monkeypatch.setattr(bench_offload, "bench", lambda preset, *a: presets[preset])
    synced = []
    monkeypatch.setattr(bench_offload, "sync_readme", lambda md: synced.append(md) or True)
    with _new_run_folders("hw") as made_so_far:
        bench_offload.main(["--update-readme"] if update_readme else [])
        (folder,) = made_so_far()
        assert (folder / "offload_bench.md").is_file()
        assert len(synced) == (1 if update_readme else 0)


def test_hw_quant_bench_writes_a_new_run_folder(monkeypatch):
    from benchmarks.hw import bench_quant
    rows = _committed("quant_bench.json")["rows"]
    monkeypatch.setattr(bench_quant, "run", lambda seeds, spreads: rows)
    with _new_run_folders("hw") as made_so_far:
        bench_quant.main(["--seeds", "1"])
        (folder,) = made_so_far()
        assert (folder / "quant_bench.md").is_file()
