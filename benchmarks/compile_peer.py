"""``compile``: version 1 under ``torch.compile``, the peer a user would reach for first.

Hand-written kernels must beat this row to be worth their complexity.
"""
from dataclasses import dataclass

import torch

from version1_baseline import TinyLlama
from version1_baseline.spec import VersionSpec, option

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class Options:
    compile_mode: str = option("default", "torch.compile mode", choices=COMPILE_MODES)


# The harness runs one model through several fixed-shape workloads (gate, train, prefill,
# decode at a fixed cache length); each is a separate graph. Past dynamo's default limit of
# 8 graphs per frame it silently runs eager, and the "compile" row would time eager code.
# The KV cache's position is still a Python int (read by every attention's slicing and by
# the v3/v4 kernels), so each cache length is its own guarded graph: the limit stays.
RECOMPILE_LIMIT = 64


def _prepare(model, options: Options, device, dtype):
    import torch._dynamo.config as dynamo_config
    for knob in ("recompile_limit", "cache_size_limit"):
        if getattr(dynamo_config, knob, RECOMPILE_LIMIT) < RECOMPILE_LIMIT:
            setattr(dynamo_config, knob, RECOMPILE_LIMIT)
    if options.compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got "
                         f"{options.compile_mode!r}")
    # dynamic=False: every workload has fixed shapes; recompiles would be timed otherwise.
    compiled = torch.compile(model, mode=options.compile_mode, dynamic=False)
    compiled.config = model.config
    compiled.new_cache = model.new_cache
    return compiled


def _describe(model) -> dict:
    return {"torch_compile": True}


SPEC = VersionSpec(name="compile", model_cls=TinyLlama, options=Options, prepare=_prepare,
                   describe=_describe)
