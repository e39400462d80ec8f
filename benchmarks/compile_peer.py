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


def _prepare(model, options: Options, device, dtype):
    if options.compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got "
                         f"{options.compile_mode!r}")
    # The harness runs one model through several fixed-shape workloads (gate, train, prefill,
    # decode), each a graph of its own, within dynamo's default recompile limit: caches are
    # StaticKVCaches (the position is a tensor), so decode is one graph for every position.
    model.static_kv_cache = True
    # dynamic=False: every workload has fixed shapes; recompiles would be timed otherwise.
    compiled = torch.compile(model, mode=options.compile_mode, dynamic=False)
    compiled.config = model.config
    compiled.new_cache = model.new_cache
    return compiled


def _describe(model) -> dict:
    return {"torch_compile": True}


SPEC = VersionSpec(name="compile", model_cls=TinyLlama, options=Options, prepare=_prepare,
                   describe=_describe)
