"""``VersionSpec``: what the benchmark harness needs to know to build and describe a version.

A version's own switches are a frozen dataclass (its *options*), declared with ``option``
so that the harness's command line can offer one flag per field without the model package
knowing anything about command lines.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .config import TinyLlamaConfig


def option(default: Any, help: str, *, choices: Sequence[str] | None = None,
           parse: Callable[[str], Any] | None = None) -> Any:
    """A field of a version's options dataclass, offered as ``--<field-name>`` on the CLI.

    ``choices``: the accepted command-line words; ``parse``: text -> field value (default:
    the text itself). Programmatic callers pass typed values and never go through ``parse``.
    """
    return dataclasses.field(default=default,
                             metadata={"help": help, "choices": choices, "parse": parse})


@dataclass(frozen=True)
class NoOptions:
    """A version without switches of its own (version 1, version 3)."""


@dataclass(frozen=True)
class VersionSpec:
    """How the harness builds, prepares and describes one version's model.

    name: short id used in tables and JSON ("v1", "v2", ...).
    model_cls: the version's TinyLlama class: ``model_cls(config)``,
        ``from_hf_state_dict(config, state)``, ``new_cache``, ``model(ids, cache=...)``.
    options: the frozen dataclass of the version's switches (``NoOptions`` when none);
        its fields are declared with ``option``.
    build: ``build(config, options) -> model`` when construction depends on the options
        (default: ``model_cls(config)``).
    prepare: ``prepare(model, options, device, dtype) -> model`` after the weights are
        loaded and the model is on ``device``; ``dtype`` is the compute dtype of the run
        (torch.float32, or the autocast dtype).
    describe: ``describe(model) -> dict`` of facts about the model for the JSON ``extra``.
    loss_fn: ``loss_fn(model, input_ids) -> scalar`` for training, when the version fuses
        the head and the loss (default: v1's ``causal_lm_loss`` on ``model(input_ids)``).
    """

    name: str
    model_cls: type
    options: type = NoOptions
    build: Callable[[TinyLlamaConfig, Any], torch.nn.Module] | None = None
    prepare: Callable[[torch.nn.Module, Any, torch.device, torch.dtype],
                      torch.nn.Module] | None = None
    describe: Callable[[torch.nn.Module], dict] | None = None
    loss_fn: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None
