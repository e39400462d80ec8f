"""Data-parallel and sharded training on CPU with gloo, 2 processes launched by torchrun.

References are independent of the engines: one plain process training the same seeded
model on the whole global batch with ``Trainer``, and ``transformers`` for the exported
folder. The 2-process jobs (tests/parallel_worker.py) run once per module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import parallel_worker as W
from version1_baseline.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
ATOL = 2e-5     # fp32: the all-reduced mean of two half-batch gradients vs one full batch


def torchrun(job: str, out: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(ROOT / "tests" / "parallel_worker.py"), job, str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_job(job: str, out: Path) -> dict:
    proc = torchrun(job, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"{job}.json").read_text())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_ranks")
    return out, run_job("train", out)


def reference_losses(version: str, steps: int = W.STEPS, model=None, start: int = 0,
                     trainer=None) -> list[float]:
    """One process, no process group, the whole global batch per step."""
    model = model if model is not None else W.build(version)
    trainer = trainer or Trainer(model, loss_fn=W.loss_fn_for(version))
    batches = W.make_batches(rank=0, world=1)
    return [float(trainer.step(batches.batch(s))) for s in range(start, start + steps)]


def test_ranks_draw_disjoint_rows_of_one_global_batch():
    whole = W.make_batches(0, 1)
    for step in (0, 7):
        halves = torch.cat([W.make_batches(r, 2).batch(step) for r in range(2)])
        quarters = torch.cat([W.make_batches(r, 4).batch(step) for r in range(4)])
        assert torch.equal(halves, whole.batch(step))
        assert torch.equal(quarters, whole.batch(step))
    assert not torch.equal(whole.batch(0), whole.batch(1))      # a fresh batch per step
    b = whole.batch(3)
    assert len({tuple(r.tolist()) for r in b}) == b.shape[0]    # rows differ from each other
    corpus = whole.corpus     # every transition is one the Markov chain allows
    allowed = (corpus.successors[b[:, :-1]] == b[:, 1:, None]).any(-1)
    assert allowed.all()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ddp_matches_one_process(two_ranks, version):
    _, got = two_ranks
    ref = reference_losses(version)
    assert ref[-1] < ref[0]      # it trains: the check is not on a flat line
    torch.testing.assert_close(torch.tensor(got[f"ddp_{version}"]), torch.tensor(ref),
                               atol=ATOL, rtol=0)


def test_fsdp_matches_ddp(two_ranks):
    _, got = two_ranks
    torch.testing.assert_close(torch.tensor(got["fsdp_v1"]), torch.tensor(got["ddp_v1"]),
                               atol=ATOL, rtol=0)


def test_resume_continues_the_uninterrupted_run(two_ranks):
    _, got = two_ranks
    after = got["fsdp_v1"][W.SAVE_AT:]
    torch.testing.assert_close(torch.tensor(got["fsdp_v1_resumed"]), torch.tensor(after),
                               atol=ATOL, rtol=0)
    # The same sharded checkpoint into another engine (DDP replicas)
    torch.testing.assert_close(torch.tensor(got["ddp_v1_resumed_from_fsdp"]),
                               torch.tensor(after), atol=ATOL, rtol=0)


def resumed_alone(out: Path):
    """The 2-rank FSDP checkpoint loaded into one plain process (no process group)."""
    from version1_baseline.checkpoint import load_checkpoint
    model = W.build("v1")
    trainer = Trainer(model)
    step = load_checkpoint(out / "fsdp_ckpt", model, trainer.optimizer)
    return model, trainer, step


def test_resume_two_ranks_into_one_process(two_ranks):
    out, got = two_ranks
    model, trainer, step = resumed_alone(out)
    assert step == W.SAVE_AT
    fresh = W.build("v1")
    assert not torch.equal(model.lm_head.weight, fresh.lm_head.weight)   # trained weights
    losses = reference_losses("v1", W.STEPS - step, model=model, start=step, trainer=trainer)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(got["fsdp_v1"][step:]),
                               atol=ATOL, rtol=0)


def test_exported_hf_folder_loads_in_transformers_and_versions(two_ranks, tmp_path):
    transformers = pytest.importorskip("transformers")
    from version1_baseline.checkpoint import export_hf
    from version2_fused.model import TinyLlama as V2

    out, _ = two_ranks
    trained, _, _ = resumed_alone(out)
    folder = export_hf(out / "fsdp_ckpt", W.build("v1"), tmp_path / "hf")
    ids = torch.randint(W.MICRO.vocab_size, (3, 11), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = trained.eval()(ids)
        hf = transformers.LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
        got_hf = hf.eval()(ids).logits
        got_v2 = V2.from_pretrained(folder).eval()(ids)
    torch.testing.assert_close(got_hf, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_v2, want, atol=1e-4, rtol=1e-4)


def test_a_raising_rank_ends_the_job_with_its_name(tmp_path):
    t0 = time.monotonic()
    proc = torchrun("raise", tmp_path, timeout=120)
    assert proc.returncode != 0
    assert ("error: rank 1 of 2 failed: RuntimeError: injected failure on purpose"
            in proc.stderr)
    assert time.monotonic() - t0 < 100


def test_a_hanging_rank_is_ended_by_the_process_group_timeout(tmp_path):
    t0 = time.monotonic()
    proc = torchrun("hang", tmp_path, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "error: rank 0 of 2 failed:" in proc.stderr    # rank 0 gave up waiting
    assert elapsed < 55, f"took {elapsed:.0f} s; rank 1 sleeps 60 s, the timeout is 4 s"


def cli(module: str, *args) -> int:
    """The version's CLI in this process (no launcher needed for a refusal)."""
    import importlib
    from benchmarks.cli import main
    spec = importlib.import_module(module).SPEC
    return main(spec, ["--mode", "train", "--steps", "1", "--warmup", "0", "--seq-len", "8",
                       "--no-count", *args])


@pytest.mark.parametrize("module, args, env, expected", [
    ("version1_baseline", ["--parallel", "zero3"], {},
     "error: --parallel 'zero3' is not an engine here"),
    ("version1_baseline", ["--parallel", "deepspeed"], {},
     "error: --parallel deepspeed is not offered"),
    ("version1_baseline", ["--parallel", "ddp", "--batch-size", "4"], {"WORLD_SIZE": "3"},
     "error: world size 3 does not divide the global batch 4"),
    ("version1_baseline", ["--parallel", "ddp", "--mode", "decode"], {},
     "error: --parallel / checkpoints apply to --mode train"),
    ("version2_fused", ["--parallel", "fsdp", "--compile", "default"], {},
     "error: --parallel fsdp: the model is torch.compile'd as a whole"),
])
def test_refused_requests_are_one_line(module, args, env, expected, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli(module, *args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), err


def test_fsdp_refuses_a_model_compiled_whole():
    from version1_baseline.distributed import cannot_shard
    model = W.build("v1")
    assert cannot_shard(model) is None
    model.compile()
    assert "compile" in cannot_shard(model)
    assert "no model.layers" in cannot_shard(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_v3_kernels_train_under_ddp_and_fsdp_with_plain_tensors(tmp_path):
    got = run_job("v3", tmp_path)
    ref = reference_losses("v3")
    torch.testing.assert_close(torch.tensor(got["ddp_v3"]), torch.tensor(ref), atol=ATOL,
                               rtol=0)
    torch.testing.assert_close(torch.tensor(got["fsdp_v3"]), torch.tensor(ref), atol=ATOL,
                               rtol=0)
    assert got["fsdp_v3_modules_probed"] > 0
    assert got["fsdp_v3_dtensor_weights_seen"] == []


def test_to_hf_command_converts_a_cli_checkpoint_of_version_2(tmp_path, capsys):
    """v2 keeps fused QKV/gate-up parameters: the command rebuilds v2 from the recorded
    options so the checkpoint's keys match, then writes the HF (unfused) layout."""
    transformers = pytest.importorskip("transformers")
    from benchmarks.__main__ import main as bench_main
    from version1_baseline.checkpoint import load_model_weights
    from version1_baseline.model import TinyLlama as V1
    from version2_fused.model import TinyLlama as V2
    from version1_baseline.config import get_preset

    ckpt, out = tmp_path / "ckpt", tmp_path / "hf"
    assert cli("version2_fused", "--preset", "chip16", "--parallel", "fsdp",
               "--save-checkpoint", str(ckpt)) == 0
    assert bench_main(["to-hf", str(ckpt), str(out)]) == 0
    v2 = V2(get_preset("chip16"))
    load_model_weights(ckpt, v2)
    ids = torch.randint(64, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = v2.eval()(ids)
        hf = transformers.LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
        torch.testing.assert_close(hf.eval()(ids).logits, want, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(V1.from_pretrained(out).eval()(ids), want, atol=1e-4,
                                   rtol=1e-4)
