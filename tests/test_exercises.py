"""exercises/: every check passes on the project's own output and fails on a wrong answer;
skeletons differ from the kernels exactly in the marked regions.

The runs are the exercises' own commands at the smallest sizes that still exercise them
(chip16, few steps, a 2-layer 32-wide model for the interpreter's launch count, a subset of
the flash-attention tests, the default Verilator test build that the rtl tests use), so every
check runs in the default suite; the compile table is the committed one. The full-size runs
the exercises prescribe (tiny in the interpreter, the whole kernel test file) are `slow`.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import kernel_count
from benchmarks.__main__ import main as bench_main
from exercises import catalog
from exercises.__main__ import main as exercises_main
from exercises.checks import CHECKS, judge
from exercises.hw_cycles import main as hw_cycles_main
from exercises.hw_link import main as hw_link_main
from exercises.hw_wave import main as hw_wave_main
from exercises.skeleton import BEGIN, END, KERNEL_EXERCISES, regions, run_kernel_tests, skeleton
from version1_baseline.config import TinyLlamaConfig

REPO = Path(__file__).resolve().parents[1]
COMPILE_TABLE = REPO / "benchmarks" / "results" / "compile"


def run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode in (0, 2), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def wrong(exp):
    """An answer the check must refuse: a choice it does not accept, or a number far outside."""
    if exp.is_choice:
        return next(c for c in exp.choices if c not in exp.accepted)
    return repr(exp.value * 1.5 + 10 * exp.abs_tol + 1.0)


def assert_checks(exercise_id, folder, capsys=None):
    exp = CHECKS[exercise_id](folder)
    right = sorted(exp.accepted)[0] if exp.is_choice else repr(exp.value)
    assert exercises_main(["check", exercise_id, "--answer", right, "--run", str(folder)]) == 0
    assert exercises_main(["check", exercise_id, "--answer", wrong(exp), "--run", str(folder)]) == 1
    return exp


# ------------------------------------------------------------------ catalog and CLI
@pytest.mark.parametrize("exercise_id", [e for e, _ in catalog.ORDER])
def test_every_exercise_has_its_sections_and_a_check(exercise_id):
    text = catalog.markdown_path(exercise_id).read_text()
    for section in ("**What to learn.**", "**What to run.**", "**What to look at.**",
                    "**Question.**", "**Check**"):
        assert section in text, f"{exercise_id}: missing {section}"
    assert f"python -m exercises check {exercise_id} " in text
    assert (exercise_id in CHECKS) != (exercise_id in KERNEL_EXERCISES)


def test_every_check_is_listed():
    assert set(CHECKS) | set(KERNEL_EXERCISES) == set(catalog.RUNGS)


def test_readme_links_every_exercise_in_the_order_to_take_them():
    import re
    text = (REPO / "README.md").read_text()
    linked = re.findall(r"\]\(exercises/(v\d|hw)/([\w-]+)\.md\)", text)
    assert linked == [(rung, eid) for eid, rung in catalog.ORDER]


def test_cli_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no exercise"):
        exercises_main(["show", "v9-nothing"])
    assert exercises_main(["check", "v1-blocks", "--answer", "0.5", "--run",
                           str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert exercises_main(["check", "v3-compile-tc", "--answer", "many", "--run",
                           str(COMPILE_TABLE)]) == 2
    assert "not a number" in capsys.readouterr().err


def test_judge_tolerance_edges():
    from exercises.checks import Expected
    exp = Expected("x", 100.0, rel_tol=0.02)
    assert judge(exp, "102")[0] and judge(exp, "98.0")[0]
    assert not judge(exp, "102.5")[0]
    choice = Expected("x", accepted=frozenset({"a"}), choices=("a", "b"))
    assert judge(choice, "A")[0] and not judge(choice, "b")[0]
    with pytest.raises(ValueError, match="not one of"):
        judge(choice, "c")


# ------------------------------------------------------------------ kernel skeletons
@pytest.mark.parametrize("exercise_id", sorted(KERNEL_EXERCISES))
def test_skeleton_differs_from_the_kernel_exactly_in_the_marked_regions(exercise_id, tmp_path):
    ex = KERNEL_EXERCISES[exercise_id]
    solution = ex.source.read_text()
    out = tmp_path / "skel.py"
    assert exercises_main(["skeleton", exercise_id, "--out", str(out)]) == 0
    skel = out.read_text()
    assert skel == skeleton(exercise_id)
    marked = [r for r in regions(solution) if r[0] in ex.regions]
    assert {r[0] for r in marked} == set(ex.regions)
    # Put each region's body back in place of its placeholder: the solution, minus markers.
    lines, bodies = solution.splitlines(), iter(marked)
    rebuilt = []
    for line in skel.splitlines():
        if "# YOUR CODE (" in line:
            _, first, last = next(bodies)
            rebuilt += lines[first + 1:last]
        else:
            rebuilt.append(line)
    unmarked = [ln for i, ln in enumerate(lines)
                if not any(r[1] == i or r[2] == i for r in marked)]
    assert rebuilt == unmarked
    assert next(bodies, None) is None
    assert skel != solution and "# exercise:" not in skel
    for _, first, last in marked:   # no solution line of a region survives in the skeleton
        body = [ln for ln in lines[first + 1:last] if ln.strip()]
        assert body and not any(b in skel.splitlines() for b in body if b.strip() != "")
    compile(skel, str(out), "exec")   # still valid Python: only the learner's lines are missing


def test_region_markers_must_pair():
    with pytest.raises(ValueError, match="never closed"):
        regions("# exercise: begin a\nx = 1\n")
    with pytest.raises(ValueError, match="without a begin"):
        regions("x = 1\n# exercise: end\n")
    assert BEGIN.match("    # exercise: begin rmsnorm-fwd") and END.match("  # exercise: end")


def test_rmsnorm_check_passes_the_kernel_and_fails_its_skeleton(tmp_path):
    ok = run_kernel_tests("v3-rmsnorm", KERNEL_EXERCISES["v3-rmsnorm"].source)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    assert " passed" in ok.stdout
    skel = tmp_path / "my_rms_norm.py"
    skel.write_text(skeleton("v3-rmsnorm"))
    assert exercises_main(["check", "v3-rmsnorm", "--file", str(skel)]) == 1


# A quick subset of tests/test_kernel_flash_attention.py: two key blocks (17 keys, so the
# running max and sum are rescaled), GQA, and queries after cached keys; forward and
# gradients. Seconds in the interpreter; the whole file is the slow test below.
FLASH_QUICK = "2-17-2-2-24 or queries_after_cached_keys"


def test_online_softmax_check_passes_the_kernel_and_fails_its_skeleton(tmp_path):
    src = KERNEL_EXERCISES["v3-online-softmax"].source
    ok = run_kernel_tests("v3-online-softmax", src, extra=["-k", FLASH_QUICK])
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    assert "2 passed" in ok.stdout
    skel = tmp_path / "my_flash_attention.py"
    skel.write_text(skeleton("v3-online-softmax"))
    assert exercises_main(["check", "v3-online-softmax", "--file", str(skel)]) == 1


@pytest.mark.slow
def test_online_softmax_full_check_passes_the_kernel():
    src = KERNEL_EXERCISES["v3-online-softmax"].source
    assert exercises_main(["check", "v3-online-softmax", "--file", str(src)]) == 0


# ------------------------------------------------------------------ analysis checks
@pytest.fixture(scope="session")
def v1_profile(tmp_path_factory):
    out = tmp_path_factory.mktemp("v1-prof")
    run("-m", "benchmarks.profiling", "--versions", "v1", "--preset", "chip16", "--mode", "train",
        "--steps", "1", "--warmup", "1", "--no-vendor", "--out", str(out))
    return out


def test_v1_blocks_and_flops(v1_profile):
    s = json.loads((v1_profile / "v1" / "profile_summary.json").read_text())
    exp = assert_checks("v1-blocks", v1_profile)
    b = s["block_ms"]
    assert exp.value == pytest.approx(b["attention"] / (b["attention"] + b["mlp"] + b["final_norm"]))
    exp = assert_checks("v1-flops", v1_profile)
    assert 2.5 < exp.value < 3.5     # forward + backward over forward, on a train step
    assert CHECKS["v1-flops-why"](v1_profile).accepted == {"backward"}
    assert_checks("v1-flops-why", v1_profile)


def test_v1_kvcache(tmp_path):
    for mode in ("decode", "prefill"):
        run("-m", "version1_baseline", "--preset", "chip16", "--mode", mode, "--steps", "3",
            "--warmup", "1", "--no-count", "--json", str(tmp_path / f"{mode}.json"))
    exp = assert_checks("v1-kvcache", tmp_path)
    times = {m: json.loads((tmp_path / f"{m}.json").read_text())["step_time_ms"]["median"]
             for m in ("decode", "prefill")}
    assert exp.value == pytest.approx(times["prefill"] / times["decode"])


def test_v2_ablation_and_sdpa(tmp_path):
    run("-m", "benchmarks.ablation", "--preset", "chip16", "--modes", "prefill",
        "--repeats", "2", "--warmup", "1", "--compile", "off", "--no-count", "--out", str(tmp_path))
    exp = assert_checks("v2-ablation", tmp_path)
    assert exp.accepted and exp.accepted < set(exp.choices)
    exp = assert_checks("v2-sdpa", tmp_path)
    assert exp.accepted == {"flash-cpu"} or exp.accepted <= {"flash", "memory-efficient",
                                                            "cudnn", "math"}


def test_v3_compile_table_checks():
    rows = json.loads((COMPILE_TABLE / "compile.json").read_text())["rows"]
    exp = assert_checks("v3-compile-tc", COMPILE_TABLE)
    assert exp.value == max(r["tc_instr"] for r in rows if r["version"] == "v3"
                            and r["kernel"] == "flash_attention._fwd_kernel"
                            and r["target"] == "sm_90" and r["dtype"] == "bf16"
                            and r["mode"] == "train")
    assert exp.value > 0   # bf16 dots land on the tensor cores
    assert_checks("v3-compile-spill", COMPILE_TABLE)


def test_hw_link(tmp_path):
    assert hw_link_main(["--preset", "chip16", "--tokens", "2", "--out", str(tmp_path)]) == 0
    exp = assert_checks("hw-link", tmp_path)
    assert exp.value > 0    # streaming moves the weights again on every decode call


# The smallest shape v3 and v4 both take (head_dim 16), 2 layers: seconds in the interpreter.
LAUNCH_CONFIG = TinyLlamaConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=2,
                                num_kv_heads=1, intermediate_size=64, max_seq_len=16,
                                batch_size=1)


def test_v4_launches(tmp_path):
    counts = kernel_count.triton_calls(LAUNCH_CONFIG, 1, 2)
    record = kernel_count.interpreter_record(LAUNCH_CONFIG, 1, 2, counts)
    (tmp_path / "kernel_count.json").write_text(json.dumps(record))
    exp = assert_checks("v4-launches", tmp_path)
    for v in ("v3", "v4"):
        for stage in ("forward", "decode_token"):
            assert counts["launches"][v][stage] == (counts["triton_calls"][v][f"{stage}_total"]
                                                    + counts["torch_ops"][v][f"{stage}_total"])
    fwd = {v: counts["launches"][v]["forward"] for v in ("v3", "v4")}
    assert exp.value == (fwd["v3"] - fwd["v4"]) / 2
    # v3 runs its projections as torch GEMMs (4 per layer + the LM head); v4 folds them
    # into its Triton kernels, so it saves launches per layer
    assert counts["torch_ops"]["v3"]["forward"]["aten.mm.default"] == 4 * 2 + 1
    assert counts["torch_ops"]["v4"]["forward"]["aten.mm.default"] == 1
    assert exp.value >= 4


@pytest.mark.slow
def test_v4_launches_tiny_command(tmp_path):
    run("-m", "benchmarks.kernel_count", "--preset", "tiny", "--triton-calls",
        "--json", str(tmp_path / "kernel_count.json"))
    assert assert_checks("v4-launches", tmp_path).value >= 4


def test_v4_floor(tmp_path):
    assert bench_main(["run", "--versions", "v1", "--presets", "chip16", "--modes", "decode",
                       "--steps", "3", "--warmup", "1", "--device", "cpu", "--no-progress",
                       "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "results.json").read_text())
    exp = assert_checks("v4-floor", tmp_path)
    (row,) = [row for row in r["rows"] if row["mode"] == "decode"]
    assert exp.value == pytest.approx(row["bytes_min_traffic_model"]
                                      / r["machine"]["ceilings"]["copy_bytes_per_s"] * 1e6)


@pytest.mark.rtl
def test_hw_cycles_and_memory_latency_on_the_rtl_equal_the_cycle_model(tmp_path):
    # The off-chip latency is the harness's memory model, not a build parameter: the
    # default test build measures the changed configuration too. In this process (the
    # runner's own CLI): no second start-up of torch.
    change = ["--set", "mem_latency_cycles=100"]
    assert hw_cycles_main(["--preset", "chip16", "--target", "rtl", *change,
                           "--out", str(tmp_path / "rtl")]) == 0
    assert hw_cycles_main(["--preset", "chip16", *change, "--out", str(tmp_path / "model")]) == 0
    exp = assert_checks("hw-cycles", tmp_path / "rtl")
    assert 0 < exp.value < 1
    assert CHECKS["hw-cycles"](tmp_path / "model").value == exp.value
    rtl, model = (json.loads((tmp_path / t / "cycles.json").read_text())["runs"]
                  for t in ("rtl", "model"))
    for side in ("baseline", "changed"):
        assert rtl[side]["counters"] == model[side]["counters"]
    assert rtl["changed"]["counters"]["cycles"] > rtl["baseline"]["counters"]["cycles"]
    assert_checks("hw-param", tmp_path / "rtl")


def test_hw_param_array_size(tmp_path, capsys):
    assert hw_cycles_main(["--preset", "tiny", "--set", "n=32", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "cycles.json").read_text())["runs"]
    exp = assert_checks("hw-param", tmp_path)
    base, n32 = r["baseline"]["counters"], r["changed"]["counters"]
    assert r["changed"]["config"]["n"] == 32 and r["baseline"]["config"]["n"] == 16
    assert exp.value == base["cycles"] / n32["cycles"] > 1
    assert n32["array_busy"] < base["array_busy"] / 3   # a quarter of the tiles, each m rows
    only = tmp_path / "baseline-only"          # a run without --set: nothing to compare
    only.mkdir()
    del r["changed"]
    (only / "cycles.json").write_text(json.dumps({"runs": r}))
    assert exercises_main(["check", "hw-param", "--answer", "1", "--run", str(only)]) == 2
    assert "no changed run" in capsys.readouterr().err


def test_hw_param_small_accumulator_splits_the_prefill(tmp_path):
    # A quarter of chip16's accumulator holds fewer tokens per device run: the SRAM plan
    # splits tiny's prefill, and the check sums every run's counters.
    assert hw_cycles_main(["--preset", "tiny", "--set", "acc_rows=4096",
                           "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "cycles.json").read_text())["runs"]
    assert r["baseline"]["device_runs"] == 1 and r["changed"]["device_runs"] > 1
    assert r["changed"]["counters"]["instructions"] > r["baseline"]["counters"]["instructions"]
    exp = assert_checks("hw-param", tmp_path)
    assert exp.value == r["baseline"]["counters"]["cycles"] / r["changed"]["counters"]["cycles"]


@pytest.mark.parametrize("argv, message", [
    (["--set", "q=1"], "FIELD one of n, lanes"),
    (["--set", "n=thirty"], "is not a number"),
    (["--set", "n=24"], "n must be a power of two"),
    (["--set", "n=32"], "hidden 16 not a multiple of the 32x32 array"),
])
def test_hw_cycles_refuses_bad_changes(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        hw_cycles_main(["--preset", "chip16", *argv, "--out", str(tmp_path)])
    assert not (tmp_path / "cycles.json").exists()


@pytest.mark.rtl
def test_hw_wave(tmp_path):
    assert hw_wave_main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "gemm_tile.fst").stat().st_size > 100
    exp = assert_checks("hw-wave", tmp_path)
    assert exp.value >= 16    # at least one row per cycle through the array
