"""Version 2's hooks into the shared CLI: fusion flags, build, compile, describe."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.spec import VersionSpec

from .fusions import COMPILE_MODES, SWITCHES, FusionConfig, compile_model
from .model import TinyLlama
from .sdpa_backend import describe_sdpa


@dataclass(frozen=True)
class RunContext:
    """The workload a CLI run times, kept on the model so ``describe`` can observe the
    SDPA backend on the same shapes and dtype."""

    mode: str
    batch_size: int
    seq_len: int
    device: torch.device
    dtype: torch.dtype


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fusions", default="all",
        help=f"comma-separated fusions to turn on: {', '.join(SWITCHES)}; or all / none "
             "(default: all)")
    parser.add_argument("--compile", default=None, choices=COMPILE_MODES,
                        help="also torch.compile the model with this mode")


def fusions_from_args(args: argparse.Namespace) -> FusionConfig:
    return FusionConfig.from_names(args.fusions.split(","), compile_mode=args.compile)


def build(config: TinyLlamaConfig, args: argparse.Namespace) -> TinyLlama:
    """Version 2 with the requested fusions; under the same seed it holds the same
    initial weights as version 1 (TinyLlama builds version 1 first, then fuses)."""
    return TinyLlama(config, fusions_from_args(args))


def prepare(model: TinyLlama, args: argparse.Namespace, device: torch.device) -> TinyLlama:
    from benchmarks.workloads import resolve_dtype

    config = model.config
    model.run_context = RunContext(
        mode=args.mode, batch_size=args.batch_size or config.batch_size,
        seq_len=args.seq_len or config.max_seq_len, device=device,
        dtype=resolve_dtype(args.dtype, device))
    return compile_model(model, device)


def describe(model: TinyLlama) -> dict:
    """JSON ``extra``: fusions, compile mode, SDPA backend observed and a summary line."""
    ctx = getattr(model, "run_context", None)
    if ctx is None:       # built outside the CLI: observe a prefill at the preset's shape
        device = next(model.parameters()).device
        ctx = RunContext("prefill", model.config.batch_size, model.config.max_seq_len,
                         device, torch.float32)
    facts = {"fusions": model.fusions.enabled(), "fusion_label": model.fusions.label(),
             "compile_mode": model.fusions.compile_mode}
    facts.update(describe_sdpa(model, ctx.mode, ctx.batch_size, ctx.seq_len, ctx.device,
                               ctx.dtype))
    facts["summary"] = (f"v2 fusions [{facts['fusion_label']}]; SDPA backend: "
                        f"{facts['sdpa_backend']}" +
                        (f" ({facts['sdpa_note']})" if "sdpa_note" in facts else ""))
    return facts


SPEC = VersionSpec(name="v2", model_cls=TinyLlama, add_arguments=add_arguments, build=build,
                   prepare=prepare, describe=describe)
