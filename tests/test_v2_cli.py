"""Version 2 through the shared CLI, the ablation, the profiler scripts, and torch.compile."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import schema
from benchmarks.cli import main
from version1_baseline.config import TinyLlamaConfig
from version1_baseline.train import causal_lm_loss
from version2_fused import SPEC, FusionConfig, TinyLlama, compile_model
from benchmarks.ablation import ablation_rows, run_ablation

REPO = Path(__file__).resolve().parent.parent
CHIP = ["--preset", "chip16", "--steps", "2", "--warmup", "1", "--device", "cpu"]


def test_cli_writes_valid_json_with_the_observed_sdpa_backend(tmp_path):
    path = tmp_path / "v2.json"
    assert main(SPEC, [*CHIP, "--mode", "train", "--seq-len", "12", "--json", str(path)]) == 0
    record = schema.load(path)
    assert record["version"] == "v2" and record["mode"] == "train"
    extra = record["extra"]
    # The backend is observed on the run's own workload shape, not a default one.
    assert "one train step at batch 1, seq 12, torch.float32 on cpu" in extra[
        "sdpa_backend_method"]
    assert extra["fusions"] == ["qkv", "gate_up", "sdpa", "rms_norm", "rope_qk"]
    # On CPU in fp32 torch dispatches SDPA to its CPU flash kernel, forward and backward.
    assert extra["sdpa_backend"] == "flash (CPU kernel)"
    assert extra["sdpa_kernel_ops"] == {
        "aten::_scaled_dot_product_flash_attention_for_cpu": 1,
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward": 1}
    assert "SDPA backend: flash (CPU kernel)" in extra["summary"]


def test_cli_fusion_flags_reach_the_model(tmp_path, capsys):
    path = tmp_path / "v2.json"
    assert main(SPEC, [*CHIP, "--mode", "decode", "--fusions", "qkv,rms_norm",
                       "--json", str(path)]) == 0
    extra = schema.load(path)["extra"]
    assert extra["fusions"] == ["qkv", "rms_norm"]
    assert extra["sdpa_backend"].startswith("none (sdpa switch off")
    capsys.readouterr()
    # A bad switch is the user's error: one line naming the flag and the switch, exit 2.
    with pytest.raises(SystemExit) as stop:
        main(SPEC, [*CHIP, "--fusions", "qkv,flash"])
    assert stop.value.code == 2
    assert "--fusions 'qkv,flash': unknown fusion switch(es) ['flash']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:          # argparse: invalid choice
        main(SPEC, [*CHIP, "--compile", "fastest"])
    assert stop.value.code == 2 and "invalid choice: 'fastest'" in capsys.readouterr().err


def test_python_dash_m_prints_the_backend_line(tmp_path):
    path = tmp_path / "decode.json"
    proc = subprocess.run(
        [sys.executable, "-m", "version2_fused", *CHIP, "--mode", "decode", "--no-count",
         "--json", str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "SDPA backend: flash (CPU kernel)" in proc.stdout
    assert schema.load(path)["extra"]["sdpa_kernel_ops"] == {
        "aten::_scaled_dot_product_flash_attention_for_cpu": 1}


def test_ablation_rows_share_weights_and_data(tmp_path):
    rows = ["v1", "v2 none", "v2 sdpa only", "v2 all"]
    results = run_ablation("chip16", ["train"], tmp_path, device=torch.device("cpu"),
                           dtype=torch.float32, batch=2, seq=8, warmup=1, repeats=2, seed=0,
                           compile_mode=None, count=True, only=rows)["train"]
    assert list(results) == rows
    files = sorted(p.name for p in tmp_path.glob("train_*.json"))
    assert files == ["train_v1.json", "train_v2_all.json", "train_v2_none.json",
                     "train_v2_sdpa_only.json"]
    losses = [schema.load(tmp_path / f)["last_loss"] for f in files]
    assert losses == pytest.approx([losses[0]] * 4, rel=1e-4)   # same math, same batches
    assert results["v1"].extra["speedup_vs_v1"] == 1.0
    assert results["v2 all"].ops_per_step < results["v1"].ops_per_step
    table = (tmp_path / "ablation.md").read_text()
    assert "| v2 sdpa only |" in table and "not measured: no GPU on this machine" in table
    with pytest.raises(ValueError, match="unknown ablation row"):
        run_ablation("chip16", ["train"], None, device=torch.device("cpu"),
                     dtype=torch.float32, batch=1, seq=4, warmup=0, repeats=1, seed=0,
                     compile_mode=None, only=["v2 flash only"])


def test_ablation_rows_ablate_autocast_on_gpu_only():
    cpu = ablation_rows("default", torch.device("cpu"), torch.float32)
    assert list(cpu) == ["v1", "v2 none", "v2 qkv only", "v2 gate_up only", "v2 sdpa only",
                         "v2 rms_norm only", "v2 rope_qk only", "v2 all",
                         "v2 all + compile(default)"]
    assert all(row.dtype is None for row in cpu.values())
    # Building the row list needs no GPU; running it does.
    gpu_bf16 = ablation_rows(None, torch.device("cuda"), torch.bfloat16)
    assert gpu_bf16["v2 all, fp32 (autocast off)"].dtype == torch.float32
    gpu_fp32 = ablation_rows(None, torch.device("cuda"), torch.float32)
    assert gpu_fp32["v2 all + bf16 autocast"].dtype == torch.bfloat16


VERSION_DIRS = {"v1": "version1_baseline", "v2": "version2_fused", "v3": "version3_triton",
                "v4": "version4_ultra"}


@pytest.mark.parametrize("version", sorted(VERSION_DIRS))
def test_version_profiler_scripts_run_the_top_level_script_for_their_version(version, tmp_path):
    """Each per-version script is the same one line over the top-level script: run beside a
    stand-in top-level script, it must hand over VERSIONS=<its version> and every argument."""
    (tmp_path / "run_all_profilers.sh").write_text(
        'echo "$VERSIONS $*" > "$(dirname "$0")/called"\n')
    folder = tmp_path / VERSION_DIRS[version]
    folder.mkdir()
    script = REPO / VERSION_DIRS[version] / "run_all_profilers.sh"
    (folder / "run_all_profilers.sh").write_text(script.read_text())
    env = {k: v for k, v in os.environ.items() if k != "VERSIONS"}
    subprocess.run(["bash", str(folder / "run_all_profilers.sh"), "--preset", "small",
                    "--fusions", "qkv"], check=True, env=env)
    assert (tmp_path / "called").read_text().split() == [
        version, "--preset", "small", "--fusions", "qkv"]
    lines = {name: (REPO / d / "run_all_profilers.sh").read_text().replace(name, "vN")
             for name, d in VERSION_DIRS.items()}
    assert len(set(lines.values())) == 1, "the per-version scripts differ beyond the version"


COMPILE_CONFIG = TinyLlamaConfig(vocab_size=50, hidden_size=32, num_layers=1, num_heads=4,
                                 num_kv_heads=2, intermediate_size=64, max_seq_len=16)


def _compiled_pair(mode):
    torch.manual_seed(0)
    eager = TinyLlama(COMPILE_CONFIG)
    compiled = TinyLlama.from_hf_state_dict(COMPILE_CONFIG, eager.to_hf_state_dict(),
                                            FusionConfig(compile_mode=mode))
    return eager, compile_model(compiled, torch.device("cpu"))


def test_compiled_forward_matches_eager():
    eager, compiled = _compiled_pair("default")
    assert compiled._compiled_call_impl is not None      # nn.Module.compile took effect
    ids = torch.randint(50, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(compiled(ids), eager(ids), atol=2e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "max-autotune"])
def test_compiled_gradients_and_cache_decode_match_eager(mode):
    eager, compiled = _compiled_pair(mode)
    ids = torch.randint(50, (2, 16))
    for model in (eager, compiled):
        causal_lm_loss(model(ids), ids).backward()
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    cache = compiled.new_cache(2)
    with torch.no_grad():
        steps = [compiled(ids[:, :10], cache=cache), compiled(ids[:, 10:13], cache=cache)]
        steps += [compiled(ids[:, t:t + 1], cache=cache) for t in range(13, 16)]
        torch.testing.assert_close(torch.cat(steps, 1), eager(ids), atol=2e-5, rtol=1e-4)


def test_results_json_files_are_valid_when_present():
    """Committed CPU results must pass the schema and name their machine."""
    folder = REPO / "benchmarks" / "results" / "cpu-2core" / "v2"
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip("no committed v2 results yet")
    for path in files:
        record = schema.load(path)
        assert record["machine"]["device_name"], path
        assert json.loads(path.read_text())["version"] in ("v1", "v2")
