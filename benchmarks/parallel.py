"""Train mode past one process: ``torchrun --nproc-per-node N -m versionN_* --mode train
--parallel ddp|fsdp``. The engines are ``version1_baseline.distributed``'s; this file adds
the flags, the timed loop, the per-rank result record and checkpoint save/resume.

Every rank runs this code. Rank 0 prints and writes the JSON; a rank that fails prints one
line naming itself before its exception ends the process, and torchrun then stops the
other ranks (a rank that hangs instead is ended by the process-group timeout).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from version1_baseline.config import get_preset
from version1_baseline.data import MarkovCorpus
from version1_baseline.errors import UserError
from version1_baseline.distributed import (ENGINES, ParallelError, ParallelPlan, RankEnv,
                                           ShardedBatches, cannot_shard, describe_sharding,
                                           failures_named,
                                           gather_objects,
                                           init_distributed, launched_world_size,
                                           local_batch_size, mean_over_ranks, shutdown,
                                           wrap_model)
from version1_baseline.train import Trainer

from .counters import peak_memory
from .environment import best_device, machine_info, synchronize
from .schema import RunResult
from .timing import summarize, time_once
from .validation import check_workload
from .versions import build_model
from .workloads import dtype_label, resolve_dtype

# DeepSpeed is installed for its FLOPS profiler; its ZeRO engine is not offered because it
# did not run on this project's CPU machine (see README "Past one GPU"). Named here so the
# flag answers with the reason rather than "unknown engine".
DEEPSPEED_REASON = ("--parallel deepspeed is not offered: DeepSpeed's ZeRO engine did not run "
                    "on the CPU machine this project is tested on, so it is untested here; "
                    "use --parallel fsdp (FSDP2 shards like ZeRO-3)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("past one process (train mode, launched by torchrun)")
    g.add_argument("--parallel", default="none", metavar="{none,ddp,fsdp}",
                   help="none; ddp: a replica per rank; fsdp: FSDP2 fully_shard per decoder "
                        "layer. Launch: torchrun --nproc-per-node N -m versionN_* ...")
    g.add_argument("--mixed-precision", default="none", choices=["none", "bf16"],
                   help="fsdp: MixedPrecisionPolicy with bf16 params and fp32 reduce (GPU)")
    g.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute each decoder layer's activations in backward")
    g.add_argument("--compile-layers", action="store_true",
                   help="torch.compile each decoder layer (v1, v2)")
    g.add_argument("--dist-timeout", type=float, default=300.0,
                   help="seconds a collective may wait before the job fails (default 300)")
    g.add_argument("--save-checkpoint", default=None, metavar="DIR",
                   help="write a sharded DCP checkpoint here after the run")
    g.add_argument("--resume", default=None, metavar="DIR",
                   help="continue from a DCP checkpoint (any world size wrote it)")


def wants_parallel(args: argparse.Namespace) -> bool:
    """Whether this run takes the distributed path rather than the one-process harness."""
    return (args.parallel != "none" or launched_world_size() > 1
            or bool(args.save_checkpoint or args.resume))


def plan_from_args(args: argparse.Namespace) -> ParallelPlan:
    if args.parallel == "deepspeed":
        raise ParallelError(DEEPSPEED_REASON)
    return ParallelPlan(engine=args.parallel,
                        mixed_precision=None if args.mixed_precision == "none" else "bf16",
                        activation_checkpointing=args.activation_checkpointing,
                        compile_layers=args.compile_layers, timeout_s=args.dist_timeout)


@dataclass
class StepLog:
    """What a run of steps produced on this rank: global-mean loss per step, seconds each."""

    losses: list[float]
    seconds: list[float]


def run_steps(trainer: Trainer, batches: ShardedBatches, first_step: int, count: int,
              device: torch.device) -> StepLog:
    """``count`` optimizer steps on the global batches ``first_step, first_step+1, ...``.

    Losses are averaged over ranks once at the end (one collective, not one per step):
    each rank's loss is the mean over its equal share of rows, so their mean is the loss
    of the whole global batch.
    """
    local, seconds = [], []
    for step in range(first_step, first_step + count):
        ids = batches.batch(step).to(device)
        seconds.append(time_once(lambda: local.append(trainer.step(ids)), device))
    synchronize(device)
    losses = mean_over_ranks(torch.stack(local).float()) if local else torch.empty(0)
    return StepLog([float(x) for x in losses.cpu()], seconds)


def _preset_config(args):
    if args.weights:
        from version1_baseline.weights import read_config
        return read_config(args.weights)
    return get_preset(args.preset)


def _build(spec, args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    """The version's model from the flags, through the one builder, as the one-process CLI
    builds it (same seed on every rank: same init)."""
    from version1_baseline.weights import read_checkpoint

    from .cli import options_from_args

    if args.weights:
        config, weights = read_checkpoint(args.weights)
    else:
        config, weights = get_preset(args.preset), None
    torch.manual_seed(args.seed)
    return build_model(spec, config, weights, device, options_from_args(spec, args), dtype)


def _check_request(args) -> tuple[ParallelPlan, int, int]:
    """Everything that can be refused before a process group exists (one-line errors)."""
    plan = plan_from_args(args)
    if args.mode != "train":
        raise ParallelError(f"--parallel / checkpoints apply to --mode train, not {args.mode}")
    config = _preset_config(args)
    # None means "not given"; an explicit 0 is an error, never a request for the default.
    batch = config.batch_size if args.batch_size is None else args.batch_size
    seq = config.max_seq_len if args.seq_len is None else args.seq_len
    check_workload(modes=["train"], batch_size=batch, seq_len=seq, steps=args.steps,
                   warmup=args.warmup, max_seq_len=config.max_seq_len, flags=True,
                   where=f"--weights {args.weights}" if args.weights else f"preset {args.preset}")
    local_batch_size(batch, launched_world_size())
    if plan.mixed_precision and best_device(args.device).type != "cuda":
        raise ParallelError("--mixed-precision bf16 runs on GPUs here; CPU training is fp32")
    return plan, batch, seq


def train_parallel(spec, args: argparse.Namespace) -> int:
    """The CLI's train mode under an engine; the model is built exactly as the one-process
    CLI builds it. Returns the exit status."""
    try:
        plan, batch, seq = _check_request(args)
    except UserError as exc:     # ParallelError included
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with failures_named():
            env = init_distributed(plan, best_device(args.device))
            return _train(spec, args, plan, env, batch, seq)
    except UserError as exc:     # ParallelError included
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown()


def _train(spec, args, plan: ParallelPlan, env: RankEnv, batch: int,
           seq: int) -> int:
    from version1_baseline.checkpoint import load_checkpoint, save_checkpoint

    dtype = resolve_dtype(args.dtype, env.device)
    model = _build(spec, args, env.device, dtype)
    reason = cannot_shard(model) if plan.engine == "fsdp" else None
    if reason:     # before describe, which may compile the model just to observe it
        raise ParallelError(f"--parallel fsdp: {reason}")
    # Before wrapping: v2's describe probes SDPA with its own autograd step on the plain
    # parameters, which FSDP replaces by shards.
    extra = spec.describe(model) if spec.describe else {}
    trained = wrap_model(model, plan, env)
    # FSDP's policy casts the parameters itself; autocast on top would cast twice.
    trainer = Trainer(trained, dtype=torch.float32 if plan.mixed_precision else dtype,
                      loss_fn=spec.loss_fn)
    start = load_checkpoint(args.resume, trained, trainer.optimizer) if args.resume else 0
    batches = ShardedBatches(MarkovCorpus(model.config.vocab_size, seed=args.seed), batch, seq,
                             seed=args.seed + 1, rank=env.rank, world_size=env.world_size)
    log = run_steps(trainer, batches, start, args.warmup + args.steps, env.device)
    done = start + args.warmup + args.steps
    peak, peak_method = (None, "not measured")
    if not args.no_count:    # one extra step, profiled apart so it never enters a time
        ids = batches.batch(done).to(env.device)
        peak, peak_method = peak_memory(lambda: trainer.step(ids), env.device)
        done += 1
    per_rank_peak = gather_objects(peak)
    slowest = [max(ts) for ts in zip(*gather_objects(log.seconds[args.warmup:]))]
    if args.save_checkpoint:
        save_checkpoint(args.save_checkpoint, trained, trainer.optimizer, done, meta={
            "version": spec.name, "engine": plan.engine, "config": model.config.to_dict(),
            "args": {k: v for k, v in vars(args).items()
                     if isinstance(v, (str, int, float, bool, type(None)))}})
    if not env.is_main:
        return 0
    times = summarize(slowest)
    known = [p for p in per_rank_peak if p is not None]
    result = RunResult(
        version=spec.name, preset="custom" if args.weights else args.preset, mode="train",
        batch_size=batch, seq_len=seq, dtype=dtype_label(dtype), config=model.config.to_dict(),
        machine=machine_info(env.device), step_time_ms=times, warmup=args.warmup,
        tokens_per_step=batch * seq, tokens_per_s=batch * seq / (times["median"] / 1e3),
        peak_memory_bytes=max(known) if known else None, peak_memory_method=peak_method,
        kernel_launches_per_step=None, ops_per_step=None,
        first_loss=log.losses[0], last_loss=log.losses[-1],
        notes=["step time: per step, the slowest rank's (ranks wait for each other)",
               "kernels and ops are not counted under --parallel"],
        extra=extra, world_size=env.world_size, parallel=plan.engine,
        sharding=describe_sharding(plan, env.world_size), peak_memory_per_rank=per_rank_peak,
        backend=env.backend)
    t = result.step_time_ms
    print(f"{spec.name} {result.preset} train --parallel {plan.engine} x{env.world_size} "
          f"({env.backend}) on {result.machine['device_name']} [{result.dtype}, global batch "
          f"{batch}, seq {seq}]: median {t['median']:.2f} ms (p10 {t['p10']:.2f}, p90 "
          f"{t['p90']:.2f}, n={t['n']}), {result.tokens_per_s:,.0f} tokens/s")
    print(f"  loss {log.losses[0]:.4f} -> {log.losses[-1]:.4f} over steps {start}..{done - 1}")
    print(f"  {result.sharding}")
    if known:
        print("  peak memory per rank: " + ", ".join(
            "n/a" if p is None else f"{p / 2**20:.1f} MiB" for p in per_rank_peak) +
            f" ({peak_method})")
    if args.save_checkpoint:
        print(f"  checkpoint after step {done}: {args.save_checkpoint}")
    if args.json:
        result.write(args.json)
        print(f"  wrote {args.json}")
    return 0


__all__ = ["ENGINES", "add_arguments", "wants_parallel", "train_parallel", "run_steps",
           "plan_from_args", "DEEPSPEED_REASON"]


def export_checkpoint(folder, out) -> int:
    """``python -m benchmarks to-hf CKPT OUT``: a checkpoint written by ``--save-checkpoint``
    as a Hugging Face folder. The model is rebuilt (on CPU, one process) from the version
    and the command-line options recorded in the checkpoint, so its layout matches."""
    import importlib

    from version1_baseline.checkpoint import export_hf, read_meta

    from .versions import ENTRIES

    try:
        meta = read_meta(folder)
    except OSError as exc:      # the folder the user named is not a checkpoint
        raise UserError(str(exc)) from exc
    if "args" not in meta or meta.get("version") not in ENTRIES:
        raise UserError(f"{folder}: meta.json lacks the version and options of the run; only "
                        "checkpoints written by --save-checkpoint can be converted here (else "
                        "call version1_baseline.checkpoint.export_hf with a model)")
    spec = importlib.import_module(ENTRIES[meta["version"]].module).SPEC
    model = _build(spec, argparse.Namespace(**{**meta["args"], "device": "cpu"}),
                   torch.device("cpu"), torch.float32)
    export_hf(folder, model, out)
    print(f"wrote {out} ({meta['version']}, step {meta['step']}, from "
          f"{meta['saved_world_size']} rank(s))")
    return 0
