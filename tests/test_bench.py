"""The side-by-side harness: well-formed outputs, broken versions reported, the gate bites."""
import csv
import json

import pytest
import torch

from benchmarks import compare, runner, versions
from benchmarks.__main__ import main as bench_main
from benchmarks.compare import BenchSettings, run_preset
from benchmarks.workloads import make_workload
from version1_baseline import TinyLlama, get_preset
from version1_baseline.spec import VersionSpec


class _WrongHead(TinyLlama):
    """Version 1 with a deliberately wrong output: logits scaled by 1.01."""

    def forward(self, input_ids, cache=None):
        return super().forward(input_ids, cache) * 1.01


class _Raises(TinyLlama):
    """A version whose forward raises: the harness must report it and carry on."""

    def forward(self, input_ids, cache=None):
        raise RuntimeError("kernel exploded")


class _RaisesInTraining(TinyLlama):
    """Passes the gate (eval forward is v1's) but raises once a training step runs."""

    def forward(self, input_ids, cache=None):
        if self.training:
            raise RuntimeError("backward kernel missing")
        return super().forward(input_ids, cache)


FAKES = {"wrong": _WrongHead, "raises": _Raises, "raises_train": _RaisesInTraining}


@pytest.fixture
def fake_versions(monkeypatch):
    real_load = compare.load_spec

    def load_spec(name, device, allow_interpreter=False):
        if name in FAKES:
            return VersionSpec(name=name, model_cls=FAKES[name])
        return real_load(name, device, allow_interpreter)

    monkeypatch.setattr(compare, "load_spec", load_spec)
    for name in FAKES:
        monkeypatch.setitem(versions.ENTRIES, name, versions.Entry(name, "unused", f"fake {name}"))


def test_quick_run_writes_table_csv_json_and_plots(tmp_path, fake_versions, capsys):
    out = tmp_path / "bench"
    rc = bench_main(["run", "--versions", "v1,wrong,raises,raises_train,v4", "--presets",
                     "chip16", "--modes", "train,prefill,decode", "--steps", "3", "--warmup",
                     "1", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    # one progress bar over every (preset, mode, version): 1 x 3 x 5 steps, all reached,
    # whatever became of each row (ok, FAILED, ERROR, n/a)
    captured = capsys.readouterr()
    bar = captured.err
    assert "15/15" in bar and "/1 " not in bar and "/5 " not in bar, bar[-500:]
    data = json.loads((out / "results.json").read_text())
    rows = {(r["version"], r["mode"]): r for r in data["rows"]}
    assert data["machine"]["device"] == "cpu" and data["machine"]["git_sha"]

    for mode in ("train", "prefill", "decode"):
        v1 = rows[("v1", mode)]
        assert v1["status"] == "ok" and v1["repeats"] == 3
        assert v1["p10_ms"] <= v1["median_ms"] <= v1["p90_ms"]
        assert v1["speedup_vs_v1"] == pytest.approx(1.0)
        assert v1["tokens_per_s"] > 0 and v1["ops_per_step"] > 0 and v1["peak_memory_bytes"] > 0
        assert v1["workload_flops"] > 0
        # comparable across runs, and the machine's load around the timed loop recorded
        assert v1["machine"] == data["machine"]["slug"] and v1["torch"] == torch.__version__
        assert v1["git_sha"] and v1["timestamp"] and v1["quick"] is False
        for when in ("before", "after"):
            assert len(v1["load"][when]["loadavg"]) == 3 and v1["load"][when]["torch_threads"]
        assert isinstance(v1["busy"], list)
        assert v1["achieved_flops_per_s"] == pytest.approx(
            v1["workload_flops"] / (v1["median_ms"] / 1e3))
        assert 0 < v1["fraction_of_matmul_ceiling"] == pytest.approx(
            v1["achieved_flops_per_s"] / v1["matmul_ceiling_flops_per_s"])
        assert v1["model_bytes_per_s"] == pytest.approx(
            v1["bytes_min_traffic_model"] / (v1["median_ms"] / 1e3))
        # The gate caught the 1% error: FAILED and never timed.
        assert rows[("wrong", mode)]["status"] == "FAILED"
        assert rows[("wrong", mode)]["median_ms"] is None
        # Per-op records come from one extra profiled step of each timed row, and only those.
        assert v1["kernels"] and v1["kernel_step_ms"] > 0
        assert rows[("wrong", mode)]["kernels"] == [] and rows[("v4", mode)]["kernels"] == []
        assert "correctness gate" in rows[("wrong", mode)]["detail"]
        assert rows[("raises", mode)]["status"] == "ERROR"
        assert "kernel exploded" in rows[("raises", mode)]["detail"]
        # Cannot run here: a reason instead of a number.
        assert rows[("v4", mode)]["status"] == "n/a" and rows[("v4", mode)]["median_ms"] is None
    # Raising only while training: an ERROR row for train, real rows for the other modes.
    assert rows[("raises_train", "train")]["status"] == "ERROR"
    assert "backward kernel missing" in rows[("raises_train", "train")]["detail"]
    assert rows[("raises_train", "prefill")]["status"] == "ok"

    with (out / "results.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(data["rows"])
    table = (out / "table.md").read_text()
    assert "### chip16 / train" in table and "FAILED" in table and "| v1 |" in table
    assert table.startswith("# Side-by-side benchmark: chip16 / train, prefill, decode")
    printed = captured.out
    assert "### chip16 / decode" in printed and "kernel exploded" in printed
    with (out / "kernels.csv").open() as f:
        assert sum(1 for _ in csv.DictReader(f)) == sum(len(r["kernels"]) for r in data["rows"])
    for png in ("speedup.png", "aten_ops.png", "peak_memory.png", "ceiling_fraction.png",
                "roofline.png", "roofline_kernels.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The plots can be redrawn from results.json alone.
    (out / "speedup.png").unlink()
    assert bench_main(["plot", str(out)]) == 0 and (out / "speedup.png").is_file()


def test_gate_passes_v1_against_itself_and_fails_a_wrong_model():
    from benchmarks.gate import check_against_v1
    from version1_baseline import get_preset
    cfg = get_preset("chip16")
    ref = TinyLlama(cfg)
    same = TinyLlama.from_hf_state_dict(cfg, ref.to_hf_state_dict())
    wrong = _WrongHead.from_hf_state_dict(cfg, ref.to_hf_state_dict())
    device = torch.device("cpu")
    assert check_against_v1(same, ref, device).passed
    bad = check_against_v1(wrong, ref, device)
    assert not bad.passed and bad.relative_error > 1e-3


def test_unknown_version_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown version"):
        versions.parse_names("v1,v9")


def test_readme_results_section_lists_committed_results_with_their_machine(tmp_path):
    from benchmarks.readme_results import BEGIN, END, update_readme
    results = tmp_path / "benchmarks" / "results"
    (results / "cpu-2core" / "bench").mkdir(parents=True)
    (results / "cpu-2core" / "bench" / "machine.md").write_text("# CPU: Test EPYC (2 cores)\n")
    (results / "cpu-2core" / "bench" / "table.md").write_text("# tiny speedups\n| a |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold text\n{END}\nafter\n")
    assert update_readme(readme, results)
    text = readme.read_text()
    assert "old text" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "`cpu-2core`: CPU: Test EPYC (2 cores)" in text
    assert "[benchmarks/results/cpu-2core/bench/table.md]" in text and "tiny speedups" in text
    assert not update_readme(readme, results)      # idempotent
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme, results)


@pytest.mark.rtl
def test_rtl_rows_are_estimates_kept_apart_from_measurements(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = bench_main(["run", "--versions", "v1,rtl", "--presets", "chip16", "--modes",
                     "train,decode", "--steps", "2", "--warmup", "1", "--device", "cpu",
                     "--no-ceilings", "--out", str(out)])
    assert rc == 0
    assert "4/4" in capsys.readouterr().err    # the estimated rows advance the bar too
    rows = {(r["version"], r["mode"]): r
            for r in json.loads((out / "results.json").read_text())["rows"]}
    train, decode = rows[("rtl", "train")], rows[("rtl", "decode")]
    assert train["status"] == "n/a" and "inference only" in train["detail"]
    assert decode["status"] == "estimated" and "estimated at 200 MHz" in decode["detail"]
    assert decode["median_ms"] == pytest.approx(
        decode["estimated_compute_ms"] + decode["estimated_transfer_ms"])
    assert decode["speedup_vs_v1"] == pytest.approx(
        rows[("v1", "decode")]["median_ms"] / decode["median_ms"])
    assert "ESTIMATED" in (out / "table.md").read_text()
    assert (out / "rtl_compute_vs_transfer.png").read_bytes()[:4] == b"\x89PNG"


def test_roofline_minimum_bytes_by_hand():
    from benchmarks.roofline import minimum_bytes
    cfg = {"hidden_size": 8, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
           "vocab_size": 10, "tie_word_embeddings": True, "intermediate_size": 16}
    # params: embed 80 + norm 8 + layer (q 64 + o 64 + k 32 + v 32 + mlp 384 + norms 16) = 680
    params = 680
    kv = 1 * 2 * 3 * 5 * 4 * 4          # layers * (K,V) * batch * seq * kv_dim * fp32
    assert minimum_bytes(cfg, "prefill", 3, 5) == params * 4 + kv + 15 * 10 * 4 + 15 * 8
    assert minimum_bytes(cfg, "decode", 3, 5) == params * 4 + kv + 3 * 10 * 4 + 3 * 8
    assert minimum_bytes(cfg, "train", 3, 5) == params * 4 * 3 + params * 4 * 7 + 15 * 10 * 4 * 2


def test_side_by_side_row_is_the_runner_result_of_the_same_timings(monkeypatch):
    """One home for a measurement's numbers: the speedup table's row copies
    ``runner.result_from_times`` (times, tokens/s, counts, peak memory, noise flags) and
    computes none of them itself."""
    seconds = [0.010, 0.030, 0.020]    # p90/p10 near 3: the spread flag must come through
    monkeypatch.setattr(compare, "time_interleaved",
                        lambda steps, device, warmup, repeats: {"v1": list(seconds)})
    # Sentinel counters in runner: a row counted by any other code path cannot carry them.
    monkeypatch.setattr(runner, "count_step", lambda step, device: {
        "kernel_launches_per_step": 7, "ops_per_step": 11})
    monkeypatch.setattr(runner, "peak_memory", lambda step, device: (12345, "sentinel"))
    settings = BenchSettings(steps=3, warmup=0, seq_len=8, load_window_s=0.05)
    (row,) = run_preset(["v1"], "chip16", ["prefill"], torch.device("cpu"), settings)

    model = TinyLlama(get_preset("chip16"))
    work = make_workload(model, "prefill", row.batch_size, row.seq_len, torch.device("cpu"), torch.float32)
    result = runner.result_from_times(
        model, work, seconds, version="v1", preset="chip16", batch_size=row.batch_size,
        seq_len=row.seq_len, device=torch.device("cpu"), dtype=torch.float32, warmup=0, load=row.load)
    t = result.step_time_ms
    assert (row.median_ms, row.p10_ms, row.p90_ms, row.repeats) == (
        t["median"], t["p10"], t["p90"], t["n"]) and row.repeats == 3
    assert row.tokens_per_s == result.tokens_per_s > 0
    assert (row.kernel_launches_per_step, row.ops_per_step, row.peak_memory_bytes) == (
        result.kernel_launches_per_step, result.ops_per_step, result.peak_memory_bytes) == (
        7, 11, 12345)
    assert set(row.load) == {"before", "after"} and row.load == result.load
    assert row.busy == result.busy and any(b.startswith("spread") for b in row.busy)
