"""``VersionSpec``: what the shared CLI and the benchmark harness need to know about a version."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import torch

from .config import TinyLlamaConfig


@dataclass
class VersionSpec:
    """How the shared CLI and harness build one version's model.

    name: short id used in tables and JSON ("v1", "v2", ...).
    model_cls: the version's TinyLlama class: ``model_cls(config)``, ``from_pretrained``,
        ``from_hf_state_dict(config, state)``, ``new_cache``, ``model(ids, cache=...)``.
    add_arguments: adds version-specific CLI flags (e.g. fusion switches).
    build: ``build(config, args) -> model`` when construction depends on those flags.
    prepare: ``prepare(model, args, device) -> model`` after weights are loaded and the
        model is on its device (e.g. ``torch.compile``).
    describe: ``describe(model) -> dict`` of facts for the JSON ``extra`` field.
    loss_fn: ``loss_fn(model, input_ids) -> scalar`` for training, when the version fuses
        the head and the loss (default: v1's ``causal_lm_loss`` on ``model(input_ids)``).
    """

    name: str
    model_cls: type
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    build: Callable[[TinyLlamaConfig, argparse.Namespace], torch.nn.Module] | None = None
    prepare: Callable[[torch.nn.Module, argparse.Namespace, torch.device],
                      torch.nn.Module] | None = None
    describe: Callable[[torch.nn.Module], dict] | None = None
    loss_fn: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None
