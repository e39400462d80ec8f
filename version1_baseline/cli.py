"""The command line every version shares: ``python -m versionN_* --preset tiny --mode train``.

A version passes its ``VersionSpec``; everything else (presets, weights, timing, JSON)
is the same code for all of them.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .config import PRESETS, get_preset


def build_parser(spec) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m {spec.model_cls.__module__.split('.')[0]}",
        description=f"TinyLLaMA {spec.name}: time one workload and optionally write JSON.")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--mode", default="train", choices=["train", "prefill", "decode"])
    p.add_argument("--steps", type=int, default=10,
                   help="timed steps after warm-up (train: optimizer steps)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's batch")
    p.add_argument("--seq-len", type=int, default=None,
                   help="tokens per sequence (decode: context length); default: max_seq_len")
    p.add_argument("--device", default="auto", help="auto (GPU if present, else CPU), cpu, cuda")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 autocast on GPU, fp32 on CPU")
    p.add_argument("--weights", default=None,
                   help="local Hugging Face Llama folder to load (default: seeded random init)")
    p.add_argument("--seed", type=int, default=0, help="seed for init and data")
    p.add_argument("--no-count", action="store_true",
                   help="skip the profiler counts (kernel launches, ops, peak memory)")
    p.add_argument("--json", default=None, help="write the result record to this path")
    if spec.add_arguments:
        spec.add_arguments(p)
    from benchmarks.parallel import add_arguments as add_parallel_arguments
    add_parallel_arguments(p)    # --parallel, checkpoints (issue 14)
    return p


def build_model(spec, args, device: torch.device):
    """The spec's model from ``--weights`` or a seeded init, on ``device``, prepared."""
    if args.weights:
        from .weights import read_config, read_state_dict
        config = read_config(args.weights)
        state = read_state_dict(args.weights)
    else:
        config = get_preset(args.preset)
        state = None
    torch.manual_seed(args.seed)
    if spec.build:
        model = spec.build(config, args)
        if state is not None:
            model.load_hf_state_dict(state)
    elif state is not None:
        model = spec.model_cls.from_hf_state_dict(config, state)
    else:
        model = spec.model_cls(config)
    model = model.to(device)
    if spec.prepare:
        model = spec.prepare(model, args, device)
    return model


def main(spec, argv=None) -> int:
    from benchmarks.environment import best_device
    from benchmarks.noise import warning_line
    from benchmarks.runner import run_workload
    from benchmarks.workloads import resolve_dtype

    args = build_parser(spec).parse_args(argv)
    from benchmarks.parallel import train_parallel, wants_parallel
    if wants_parallel(args):     # torchrun / DDP / FSDP / checkpoints: its own loop
        return train_parallel(spec, args, build_model)
    device = best_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_model(spec, args, device)
    config = model.config
    batch = args.batch_size or config.batch_size
    seq = args.seq_len or config.max_seq_len
    for name, value in (("--steps", args.steps), ("--batch-size", batch), ("--seq-len", seq)):
        if value < 1:
            raise SystemExit(f"error: {name} must be positive, got {value}")
    if args.warmup < 0:
        raise SystemExit(f"error: --warmup must be >= 0, got {args.warmup}")
    result = run_workload(
        model, version=spec.name, preset="custom" if args.weights else args.preset,
        mode=args.mode, batch_size=batch, seq_len=seq, device=device, dtype=dtype,
        steps=args.steps, warmup=args.warmup, seed=args.seed, count=not args.no_count,
        describe=spec.describe, loss_fn=spec.loss_fn)
    t = result.step_time_ms
    print(f"{spec.name} {result.preset} {args.mode} on {result.machine['device_name']} "
          f"[{result.dtype}, batch {batch}, seq {seq}]: median {t['median']:.2f} ms "
          f"(p10 {t['p10']:.2f}, p90 {t['p90']:.2f}, n={t['n']}), "
          f"{result.tokens_per_s:,.0f} tokens/s")
    if result.first_loss is not None:
        print(f"  loss {result.first_loss:.4f} -> {result.last_loss:.4f} "
              f"over {args.warmup + args.steps} steps, fresh batches "
              f"(corpus entropy floor {result.loss_floor:.4f})")
    if result.peak_memory_bytes is not None:
        print(f"  peak memory {result.peak_memory_bytes / 2**20:.1f} MiB "
              f"({result.peak_memory_method})")
    if result.kernel_launches_per_step is not None:
        print(f"  kernel launches per step: {result.kernel_launches_per_step}")
    if result.ops_per_step is not None:
        print(f"  aten ops per step: {result.ops_per_step}")
    if result.extra.get("summary"):     # a version's one-line account of what it ran
        print(f"  {result.extra['summary']}")
    if args.json:
        result.write(args.json)
        print(f"  wrote {args.json}")
    warning = warning_line([(f"{spec.name} {result.preset}/{args.mode}", result.busy)])
    if warning:
        print(warning, file=sys.stderr)
    return 0

