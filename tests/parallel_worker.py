"""What each rank runs in tests/test_parallel.py, launched by torchrun:

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/parallel_worker.py JOB OUT

JOB ``train``: v1 and v2 under DDP, v1 under FSDP with a checkpoint after step 5 and a
resumed copy; ``v3``: version 3 (interpreter) under DDP and FSDP, recording whether any
kernel saw a DTensor; ``raise``: rank 1 raises while rank 0 waits in a collective; ``hang``:
rank 1 sleeps while rank 0 waits, so the process-group timeout must end the job.
Rank 0 writes ``OUT/<JOB>.json``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from version1_baseline.checkpoint import load_checkpoint, save_checkpoint
from version1_baseline.config import TinyLlamaConfig
from version1_baseline.data import MarkovCorpus
from version1_baseline.distributed import (ParallelPlan, ShardedBatches, failures_named,
                                           init_distributed, wrap_model)
from version1_baseline.train import Trainer

# Small enough that ten steps take well under a second per engine; head_dim 16 is the
# smallest version 3's attention kernels take.
MICRO = TinyLlamaConfig(vocab_size=96, hidden_size=64, num_layers=2, num_heads=4,
                        num_kv_heads=2, intermediate_size=96, max_seq_len=16, batch_size=4)
STEPS, SAVE_AT, SEED = 10, 5, 3


def make_batches(rank: int, world: int) -> ShardedBatches:
    return ShardedBatches(MarkovCorpus(MICRO.vocab_size, seed=SEED), MICRO.batch_size,
                          MICRO.max_seq_len, seed=SEED + 1, rank=rank, world_size=world)


def build(version: str) -> torch.nn.Module:
    torch.manual_seed(SEED)
    if version == "v1":
        from version1_baseline.model import TinyLlama
    elif version == "v2":
        from version2_fused.model import TinyLlama
    else:
        from version3_triton.model import TinyLlama
    return TinyLlama(MICRO)


def loss_fn_for(version: str):
    if version == "v3":
        from version3_triton.model import causal_lm_loss
        return causal_lm_loss
    return None


def train(version: str, engine: str, env, steps=STEPS, save=None, resume=None):
    """Losses (global mean, per step) of ``steps`` steps; optionally save after SAVE_AT."""
    from benchmarks.parallel import run_steps

    model = wrap_model(build(version), ParallelPlan(engine=engine), env)
    trainer = Trainer(model, loss_fn=loss_fn_for(version))
    start = load_checkpoint(resume, model, trainer.optimizer) if resume else 0
    batches = make_batches(env.rank, env.world_size)
    if save:
        first = run_steps(trainer, batches, start, SAVE_AT, env.device).losses
        save_checkpoint(save, model, trainer.optimizer, SAVE_AT,
                        meta={"version": version, "engine": engine})
        return first + run_steps(trainer, batches, SAVE_AT, steps - SAVE_AT, env.device).losses
    return run_steps(trainer, batches, start, steps - start, env.device).losses


def dtensor_probe(model: torch.nn.Module) -> list:
    """Forward pre-hooks on every module that reads its own weight in a kernel call; each
    records whether that weight was a DTensor when the forward ran."""
    from torch.distributed.tensor import DTensor
    seen = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.nn.Parameter):
            module.register_forward_pre_hook(
                lambda m, _args, name=name: seen.append(
                    (name, isinstance(m.weight, DTensor))))
    return seen


def main() -> None:
    job, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)    # two ranks on two cores: one thread each
    timeout = 4.0 if job == "hang" else 120.0
    with failures_named():
        env = init_distributed(ParallelPlan(engine="ddp", timeout_s=timeout),
                               torch.device("cpu"))
        result = {}
        if job == "train":
            ckpt = out / "fsdp_ckpt"
            result["ddp_v1"] = train("v1", "ddp", env)
            result["ddp_v2"] = train("v2", "ddp", env)
            result["fsdp_v1"] = train("v1", "fsdp", env, save=str(ckpt))
            result["fsdp_v1_resumed"] = train("v1", "fsdp", env, resume=str(ckpt))
            result["ddp_v1_resumed_from_fsdp"] = train("v1", "ddp", env, resume=str(ckpt))
        elif job == "v3":
            from version3_triton import runtime  # noqa: F401  (interpreter on CPU)
            result["ddp_v3"] = train("v3", "ddp", env)
            model = wrap_model(build("v3"), ParallelPlan(engine="fsdp"), env)
            seen = dtensor_probe(model)
            trainer = Trainer(model, loss_fn=loss_fn_for("v3"))
            from benchmarks.parallel import run_steps
            result["fsdp_v3"] = run_steps(trainer, make_batches(env.rank, env.world_size), 0,
                                          STEPS, env.device).losses
            result["fsdp_v3_dtensor_weights_seen"] = sorted({n for n, d in seen if d})
            result["fsdp_v3_modules_probed"] = len({n for n, _ in seen})
        elif job == "raise":
            if env.rank == 1:
                raise RuntimeError("injected failure on purpose")
            dist.all_reduce(torch.ones(1))
        elif job == "hang":
            if env.rank == 1:
                time.sleep(60)
            dist.all_reduce(torch.ones(1))
        else:
            raise ValueError(f"unknown job {job!r}")
        if env.rank == 0:
            (out / f"{job}.json").write_text(json.dumps(result))
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
