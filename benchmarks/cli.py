"""The command line every version shares: ``python -m versionN_* --preset tiny --mode train``.

A version's ``__main__`` passes its ``VersionSpec``; everything else (presets, weights,
timing, JSON) is the same code for all of them. The version's own switches become flags,
one per field of its options dataclass (``version1_baseline.spec.option``).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from version1_baseline.config import PRESETS, get_preset
from version1_baseline.errors import UserError
from version1_baseline.weights import read_checkpoint

from .cli_text import (add_text_flags, check_text_flags, run_generate, save_trained,
                       step_reporter, training_corpus)
from .environment import best_device
from .noise import warning_line
from .runner import run_workload
from .validation import (ArgumentParser, add_debug_flag, check_workload, check_writable_file,
                         cli_boundary)
from .versions import build_model, describe_run
from .workloads import resolve_dtype


def add_option_flags(parser: argparse.ArgumentParser, spec) -> None:
    """``--<field>`` for every field of ``spec.options``; unset flags keep the field default."""
    for field in dataclasses.fields(spec.options):
        meta = field.metadata
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, default=None,
                            choices=meta.get("choices"), help=meta.get("help"))


def options_from_args(spec, args: argparse.Namespace):
    """The ``spec.options`` instance the parsed flags ask for (``UserError`` naming the flag
    for a bad value)."""
    given = {}
    for field in dataclasses.fields(spec.options):
        text = getattr(args, field.name, None)
        if text is not None:
            parse = field.metadata.get("parse")
            try:
                given[field.name] = parse(text) if parse else text
            except (ValueError, TypeError) as exc:
                raise UserError(f"--{field.name.replace('_', '-')} {text!r}: {exc}") from exc
    try:
        return spec.options(**given)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{spec.name} options {given}: {exc}") from exc


def parse_options(spec, argv: list[str]):
    """A version's options from its own flags alone (e.g. ``["--fusions", "qkv"]``)."""
    parser = ArgumentParser(prog=f"{spec.name} options", add_help=False)
    add_option_flags(parser, spec)
    return options_from_args(spec, parser.parse_args(argv))


def build_parser(spec) -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=f"python -m {spec.model_cls.__module__.split('.')[0]}",
        description=f"TinyLLaMA {spec.name}: time one workload and optionally write JSON.")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--mode", default="train", choices=["train", "prefill", "decode", "generate"])
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
    add_debug_flag(p)
    add_option_flags(p, spec)
    from .parallel import add_arguments as add_parallel_arguments
    add_parallel_arguments(p)    # --parallel, checkpoints (torch.distributed engines)
    add_text_flags(p)
    return p


def read_weights_flag(folder):
    """``--weights``: the folder's config and state dict. A file that is missing, unreadable
    or malformed is the caller's input, so it is reported as a ``UserError`` naming it."""
    try:
        return read_checkpoint(folder)
    except (OSError, ValueError) as exc:     # their messages name the file
        raise UserError(f"--weights: {exc}") from exc
    except KeyError as exc:
        raise UserError(f"--weights {folder}: missing key {exc}") from exc


@cli_boundary
def main(spec, argv=None) -> int:
    """Exit 2 with one line for a bad input (``--debug``: its traceback), 1 on a bug."""
    args = build_parser(spec).parse_args(argv)
    from .parallel import train_parallel, wants_parallel
    if wants_parallel(args):     # torchrun / DDP / FSDP / checkpoints: its own loop
        return train_parallel(spec, args)
    options = options_from_args(spec, args)
    check_text_flags(args)
    device = best_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    if args.weights:
        config, weights = read_weights_flag(args.weights)
    else:
        config, weights = get_preset(args.preset), None
    if args.mode == "generate":
        torch.manual_seed(args.seed)
        return run_generate(spec, args, build_model(spec, config, weights, device, options, dtype),
                            device, dtype)
    config, corpus = training_corpus(args, config)
    # None means "not given"; an explicit 0 is an error, never a request for the default.
    batch = config.batch_size if args.batch_size is None else args.batch_size
    seq = config.max_seq_len if args.seq_len is None else args.seq_len
    check_workload(modes=[args.mode], batch_size=batch, seq_len=seq, steps=args.steps,
                   warmup=args.warmup, max_seq_len=config.max_seq_len, flags=True,
                   where=f"--weights {args.weights}" if args.weights else f"preset {args.preset}")
    if args.json:
        check_writable_file(args.json, "--json")   # before the run, not after it
    torch.manual_seed(args.seed)
    model = build_model(spec, config, weights, device, options, dtype)
    result = run_workload(
        model, version=spec.name, preset="custom" if args.weights else args.preset,
        mode=args.mode, batch_size=batch, seq_len=seq, device=device, dtype=dtype,
        steps=args.steps, warmup=args.warmup, seed=args.seed, count=not args.no_count,
        describe=lambda m: describe_run(spec, m, mode=args.mode, batch_size=batch,
                                        seq_len=seq, device=device, dtype=dtype),
        loss_fn=spec.loss_fn, corpus=corpus,
        on_step=step_reporter(spec, model, args.mode, args.warmup + args.steps))
    t = result.step_time_ms
    print(f"{spec.name} {result.preset} {args.mode} on {result.machine['device_name']} "
          f"[{result.dtype}, batch {batch}, seq {seq}]: median {t['median']:.2f} ms "
          f"(p10 {t['p10']:.2f}, p90 {t['p90']:.2f}, n={t['n']}), "
          f"{result.tokens_per_s:,.0f} tokens/s")
    if result.first_loss is not None:
        print(f"  loss {result.first_loss:.4f} -> {result.last_loss:.4f} "
              f"over {args.warmup + args.steps} steps, fresh batches"
              + (f" (corpus entropy floor {result.loss_floor:.4f})"
                 if result.loss_floor is not None else ""))
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
    if args.save:
        save_trained(model, args.save, corpus)
    warning = warning_line([(f"{spec.name} {result.preset}/{args.mode}", result.busy)])
    if warning:
        print(warning, file=sys.stderr)
    return 0
