"""Every user error at a command line: one line on stderr naming the bad value, exit 2,
no traceback, and nothing built or measured first. ``--debug`` brings the traceback back;
a bug (any other exception, even a ValueError) keeps its traceback and exit status 1.

The CLIs run in-process (``main(argv)``, catching ``SystemExit``); a few subprocesses prove
the real ``python -m`` entry points behave the same.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import benchmarks.__main__ as bench_entry
from benchmarks import cli, compare
from benchmarks.validation import DEBUG_ENV
from version1_baseline import SPEC as V1
from version1_baseline.errors import UserError
from version2_fused import SPEC as V2

REPO = Path(__file__).resolve().parent.parent
CHIP = ["--preset", "chip16", "--device", "cpu", "--steps", "1", "--warmup", "0", "--no-count"]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


@pytest.fixture(autouse=True)
def _no_debug_env(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)


def _not_reached(*args, **kwargs):
    raise AssertionError("work started before the input was checked")


def assert_one_line_error(call, capsys, *needles):
    """``call()`` exits 2 with exactly one stderr line that contains every needle."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        call()
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- a version's command line ---------------------------------------------------------------
def _a_file(tmp: Path) -> Path:
    path = tmp / "a_file"
    path.write_text("not a folder")
    return path


# case -> tmp_path -> (argv added to CHIP, needles the one line must hold)
VERSION_CASES = {
    "unknown preset": lambda tmp: (["--preset", "nope"], ["--preset", "'nope'", "chip16"]),
    "unknown device": lambda tmp: (["--device", "tpu0"], ["'tpu0'", "expected auto, cpu, cuda"]),
    "bf16 on cpu": lambda tmp: (["--dtype", "bf16"], ["bf16", "GPU only", "--dtype fp32"]),
    "missing weights folder": lambda tmp: (["--weights", str(tmp / "no_model")],
                                           ["--weights", str(tmp / "no_model")]),
    "unwritable json": lambda tmp: (["--json", str(_a_file(tmp) / "r.json")],
                                    ["--json", str(tmp / "a_file"), "is a file"]),
    "json is a folder": lambda tmp: (["--json", str(tmp)], ["--json", str(tmp), "expected a file"]),
    "steps 0": lambda tmp: (["--steps", "0"], ["--steps must be positive, got 0"]),
    "batch 0": lambda tmp: (["--batch-size", "0"], ["--batch-size must be positive, got 0"]),
    "seq 0": lambda tmp: (["--seq-len", "0"], ["--seq-len must be positive, got 0"]),
    "warmup -1": lambda tmp: (["--warmup", "-1"], ["--warmup must be >= 0, got -1"]),
    "seq above max": lambda tmp: (["--seq-len", "17"], ["--seq-len 17", "max_seq_len 16"]),
    "train seq 1": lambda tmp: (["--mode", "train", "--seq-len", "1"],
                                ["--seq-len", ">= 2", "got 1"]),
}


@pytest.mark.parametrize("spec", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("case", list(VERSION_CASES))
def test_version_cli_user_error_is_one_line(spec, case, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "build_model", _not_reached)
    monkeypatch.setattr(cli, "run_workload", _not_reached)
    argv, needles = VERSION_CASES[case](tmp_path)
    assert_one_line_error(lambda: cli.main(spec, [*CHIP, *argv]), capsys, *needles)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_version_cli_json_where_nothing_can_be_created(capsys, monkeypatch):
    """/proc refuses new folders even to root, so only trying to write can tell."""
    monkeypatch.setattr(cli, "build_model", _not_reached)
    target = "/proc/tinyllama_no_such_dir/r.json"
    assert_one_line_error(lambda: cli.main(V1, [*CHIP, "--json", target]), capsys,
                          "--json", target, "cannot write into", "expected a writable folder")


@NO_GPU
@pytest.mark.parametrize("spec", [V1, V2], ids=["v1", "v2"])
def test_version_cli_cuda_without_gpu(spec, capsys, monkeypatch):
    monkeypatch.setattr(cli, "build_model", _not_reached)
    assert_one_line_error(lambda: cli.main(spec, [*CHIP, "--device", "cuda"]), capsys,
                          "'cuda'", "no CUDA/ROCm GPU")


def test_v3_cli_refuses_bad_values_and_presets_its_kernels_cannot_run(capsys, monkeypatch):
    from version3_triton import SPEC as V3
    assert_one_line_error(lambda: cli.main(V3, [*CHIP, "--batch-size", "0"]), capsys,
                          "--batch-size must be positive, got 0")
    # chip16 has head_dim 8, below the attention kernels' range: refused while building.
    assert_one_line_error(lambda: cli.main(V3, CHIP), capsys, "head_dim", "this config has 8")


def test_version_cli_debug_shows_the_traceback(monkeypatch):
    with pytest.raises(UserError, match="--batch-size must be positive, got 0"):
        cli.main(V1, [*CHIP, "--batch-size", "0", "--debug"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(UserError, match="unknown preset|invalid choice: 'nope'"):
        cli.main(V1, [*CHIP, "--preset", "nope"])


def test_version_cli_bug_is_not_a_user_error(monkeypatch):
    """A ValueError from inside the run is a bug, not bad input: it propagates."""
    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")
    monkeypatch.setattr(cli, "run_workload", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(V1, CHIP)


# ---- python -m benchmarks -------------------------------------------------------------------
BENCH = ["run", "--versions", "v1", "--presets", "chip16", "--modes", "prefill", "--steps", "1",
         "--warmup", "0", "--device", "cpu", "--no-progress", "--no-ceilings"]

BENCH_CASES = {
    "batch 0": (["--batch-size", "0"], ["--batch-size must be positive, got 0"]),
    "batch -2": (["--batch-size", "-2"], ["--batch-size must be positive, got -2"]),
    "seq 0": (["--seq-len", "0"], ["--seq-len must be positive, got 0"]),
    "warmup -1": (["--warmup", "-1"], ["--warmup must be >= 0, got -1"]),
    "steps 0": (["--steps", "0"], ["--steps must be positive, got 0"]),
    "seq above max": (["--seq-len", "17"], ["--seq-len 17", "preset chip16's max_seq_len 16"]),
    "seq above max of one preset": (["--presets", "tiny,chip16", "--seq-len", "100"],
                                    ["--seq-len 100", "preset chip16's max_seq_len 16"]),
    "unknown preset": (["--presets", "chip16,huge"], ["'huge'", "chip16"]),
    "unknown version": (["--versions", "v1,v9"], ["['v9']", "choose from"]),
    "unknown mode": (["--modes", "prefill,sing"], ["['sing']", "train, prefill, decode"]),
    "unknown device": (["--device", "tpu0"], ["'tpu0'", "expected auto, cpu, cuda"]),
    "bf16 on cpu": (["--dtype", "bf16"], ["bf16", "GPU only"]),
    "unknown flag": (["--stepz", "3"], ["--stepz"]),
}


@pytest.mark.parametrize("case", list(BENCH_CASES))
def test_benchmarks_run_user_error_is_one_line(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_entry, "run_preset", _not_reached)
    monkeypatch.setattr(bench_entry, "measure_ceilings", _not_reached)
    out = tmp_path / "out"
    argv, needles = BENCH_CASES[case]
    assert_one_line_error(lambda: bench_entry.main([*BENCH, "--out", str(out), *argv]), capsys,
                          *needles)
    assert not out.exists()            # refused up front: no folder, no table


@NO_GPU
def test_benchmarks_run_cuda_without_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_entry, "run_preset", _not_reached)
    assert_one_line_error(lambda: bench_entry.main([*BENCH, "--device", "cuda"]), capsys,
                          "'cuda'", "no CUDA/ROCm GPU")


def test_benchmarks_unwritable_out_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_entry, "run_preset", _not_reached)
    monkeypatch.setattr(bench_entry, "measure_ceilings", _not_reached)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_one_line_error(lambda: bench_entry.main([*BENCH, "--out", str(a_file)]), capsys,
                          "--out", str(a_file), "expected a folder")
    inside = a_file / "bench"
    assert_one_line_error(lambda: bench_entry.main([*BENCH, "--out", str(inside)]), capsys,
                          "--out", str(a_file), "is a file")


@pytest.mark.parametrize("module, argv, needles", [
    ("ablation", ["--batch-size", "0"], ["batch_size must be positive, got 0"]),
    ("ablation", ["--repeats", "0"], ["repeats must be positive, got 0"]),
    ("ablation", ["--rows", "v2 flash only"], ["['v2 flash only']", "rows are"]),
    ("kernel_count", ["--seq-len", "17"], ["--seq-len 17", "max_seq_len 16"]),
    ("profile_kernels", ["--batch-size", "0"], ["--batch-size must be positive, got 0"]),
])
def test_other_benchmark_tools_refuse_bad_values(module, argv, needles, capsys, monkeypatch):
    import importlib
    tool = importlib.import_module(f"benchmarks.{module}")
    for name in ("measure_mode", "device_counts", "cases"):
        if hasattr(tool, name):
            monkeypatch.setattr(tool, name, _not_reached)
    argv = ["--preset", "chip16", "--device", "cpu", "--modes", "prefill", *argv] if (
        module == "ablation") else ["--preset", "chip16", *argv]
    assert_one_line_error(lambda: tool.main(argv), capsys, *needles)


@pytest.mark.parametrize("argv, needles", [
    (["scaling", "--version", "v1", "--nprocs", "x"], ["--nprocs 'x'", "positive ints"]),
    (["scaling", "--version", "v9", "--nprocs", "1"], ["--version 'v9'", "v1, v2, v3, v4"]),
    (["to-hf", "no_such_checkpoint", "out"], ["no_such_checkpoint", "not a checkpoint folder"]),
])
def test_other_benchmarks_subcommands_refuse_bad_values(argv, needles, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(lambda: bench_entry.main([*argv, "--out", str(tmp_path / "o")]
                                                   if argv[0] == "scaling" else argv),
                          capsys, *needles)
    assert not (tmp_path / "o").exists()


def test_parallel_train_refuses_an_explicit_zero(capsys):
    """The --parallel path reports its refusals itself (exit status 2, one line)."""
    assert cli.main(V1, [*CHIP, "--mode", "train", "--parallel", "ddp", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: --batch-size must be positive, got 0"]


def test_benchmarks_plot_of_a_missing_run(tmp_path, capsys):
    assert_one_line_error(lambda: bench_entry.main(["plot", str(tmp_path / "nope")]), capsys,
                          str(tmp_path / "nope"), "results.json")


def test_benchmarks_run_debug_shows_the_traceback():
    with pytest.raises(UserError, match="--batch-size must be positive, got -2"):
        bench_entry.main([*BENCH, "--batch-size", "-2", "--debug"])


def test_run_with_every_row_error_exits_1_and_says_so(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("workload exploded")
    monkeypatch.setattr(compare, "make_workload", broken)
    out = tmp_path / "out"
    assert bench_entry.main([*BENCH, "--modes", "prefill,decode", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: no row was measured (2 ERROR); see the detail column of {out}" in err
    assert "workload exploded" in (out / "table.md").read_text()


def test_benchmarks_bug_is_not_a_user_error(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")
    monkeypatch.setattr(bench_entry, "run_preset", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        bench_entry.main([*BENCH, "--out", str(tmp_path / "out")])


# ---- the real entry points ------------------------------------------------------------------
def _python(*args):
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


def test_python_dash_m_user_errors_exit_2_with_one_line(tmp_path):
    proc = _python("-m", "version1_baseline", *CHIP, "--batch-size", "0")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: --batch-size must be positive, got 0"]
    proc = _python("-m", "benchmarks", *BENCH, "--batch-size", "-2", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and not (tmp_path / "o").exists()
    assert proc.stderr.splitlines() == ["error: --batch-size must be positive, got -2"]


def test_python_dash_m_internal_error_keeps_traceback_and_exits_1():
    """A bug injected under the real ``python -m version1_baseline`` entry module."""
    inject = ("import runpy, sys, benchmarks.cli as c\n"
              "def broken(*a, **k): raise ValueError('a bug deep inside')\n"
              "c.run_workload = broken\n"
              f"sys.argv = ['version1_baseline', *{CHIP!r}]\n"
              "runpy.run_module('version1_baseline', run_name='__main__')\n")
    proc = _python("-c", inject)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: a bug deep inside" in proc.stderr
