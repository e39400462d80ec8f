"""Numbers that must not overstate (issue 16): ceilings are best-of-N and measured just
before the rows they bound, a row above its ceiling is flagged rather than printed as
122%, and every timed row carries GB/s from the minimum-traffic byte model."""
import pytest
import torch

from benchmarks import ceilings, compare
from benchmarks.compare import BenchSettings, Row, run_preset
from benchmarks.report import ABOVE_CEILING, ABOVE_CEILING_NOTE, markdown_table
from benchmarks.roofline import minimum_bytes
from version1_baseline import get_preset

CPU = torch.device("cpu")
MACHINE = {"device_name": "test cpu", "torch": "t", "triton": "t", "git_sha": "abc"}


def test_matmul_ceiling_is_the_best_of_its_repeats(monkeypatch):
    times = [0.30, 0.10, 0.20, 0.25]
    monkeypatch.setattr(ceilings, "time_repeats",
                        lambda fn, device, warmup, repeats: times[:repeats])
    assert ceilings.matmul_ceiling(CPU, matmul_size=8, repeats=4) == pytest.approx(
        2 * 8**3 / 0.10)
    c = ceilings.measure_ceilings(CPU, copy_mib=1, matmul_size=8, repeats=4)
    assert c.matmul_flops_per_s == pytest.approx(2 * 8**3 / 0.10)
    assert c.copy_bytes_per_s == pytest.approx(2 * 2**20 / 0.10) and c.repeats == 4


def _row(version, fraction):
    return Row(version, "tiny", "decode", "ok", dtype="fp32", batch_size=1, seq_len=8,
               median_ms=2.0, p10_ms=1.9, p90_ms=2.1, tokens_per_s=500.0,
               achieved_flops_per_s=1e9, fraction_of_matmul_ceiling=fraction,
               model_bytes_per_s=3.25e9)


def test_a_row_above_its_ceiling_is_flagged_not_printed_as_a_percentage():
    table = markdown_table([_row("v1", 0.5), _row("v2", 1.224)], MACHINE)
    v1_line = next(line for line in table.splitlines() if line.startswith("| v1 |"))
    v2_line = next(line for line in table.splitlines() if line.startswith("| v2 |"))
    assert "| 50.0 |" in v1_line
    assert f"| {ABOVE_CEILING} |" in v2_line and "122" not in v2_line
    assert ABOVE_CEILING_NOTE in table
    # GB/s column, labelled as a model
    assert "GB/s (model)" in table and "| 3.25 |" in v1_line
    assert ABOVE_CEILING_NOTE not in markdown_table([_row("v1", 0.5)], MACHINE)


def test_ceiling_is_measured_just_before_each_group_of_rows(monkeypatch):
    events = []
    real_time = compare.time_interleaved

    def timed(*args, **kwargs):
        events.append("time")
        return real_time(*args, **kwargs)

    ceilings_seen = iter([4e9, 5e9])

    def measure():
        events.append("ceiling")
        return next(ceilings_seen)

    monkeypatch.setattr(compare, "time_interleaved", timed)
    settings = BenchSettings(steps=2, warmup=0, seq_len=8, matmul_ceiling=1.0,
                             matmul_ceiling_fn=measure)
    rows = run_preset(["v1"], "chip16", ["prefill", "decode"], CPU, settings)
    assert events == ["ceiling", "time", "ceiling", "time"]
    by_mode = {r.mode: r for r in rows}
    cfg = get_preset("chip16").to_dict()
    for mode, ceiling in (("prefill", 4e9), ("decode", 5e9)):
        r = by_mode[mode]
        assert r.matmul_ceiling_flops_per_s == ceiling   # not the run-level 1.0
        assert r.fraction_of_matmul_ceiling == pytest.approx(r.achieved_flops_per_s / ceiling)
        assert r.bytes_min_traffic_model == minimum_bytes(cfg, mode, r.batch_size, r.seq_len)
        assert r.model_bytes_per_s == pytest.approx(
            r.bytes_min_traffic_model / (r.median_ms / 1e3))


def test_readme_shows_the_latest_committed_speedup_table_itself(tmp_path):
    import os
    import subprocess

    from benchmarks.readme_results import BEGIN, END, update_readme

    def git(*args, when=None):
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
        if when:
            env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True)

    machine = tmp_path / "benchmarks" / "results" / "cpu-test"
    for name, when, value in (("z-old", "2020-01-01T00:00:00", "11.11"),
                              ("a-new", "2024-01-01T00:00:00", "22.22"),
                              ("scaling", "2025-01-01T00:00:00", "33.33")):
        (machine / name).mkdir(parents=True)
        title = "ddp scaling" if name == "scaling" else "Side-by-side benchmark"  # not a speedup table
        (machine / name / "table.md").write_text(
            f"# {title} {name}\n\nMachine: test\n\n### tiny / decode\n\n"
            f"| version | median ms |\n|---|---|\n| v1 | {value} |\n")
        if name == "z-old":
            (machine / name / "machine.md").write_text("# CPU: Test (2 cores)\n")
        git("init", "-q") if name == "z-old" else None
        git("add", ".")
        git("commit", "-q", "-m", name, when=when)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\n{END}\n")
    assert update_readme(readme, tmp_path / "benchmarks" / "results")
    text = readme.read_text()
    # the newer commit wins although its folder sorts first; its rows are in the README
    assert "##### Latest speedup table on `cpu-test` ([benchmarks/results/cpu-test/a-new/" in text
    assert "| v1 | 22.22 |" in text and "| v1 | 11.11 |" not in text and "33.33" not in text
    assert "##### tiny / decode" in text   # its headings sit below the machine's heading
    assert "[benchmarks/results/cpu-test/z-old/table.md]" in text   # still listed as a link
