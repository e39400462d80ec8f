"""Version 2's switches (``Options``) and how the harness builds, compiles and describes it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.spec import VersionSpec, option

from .fusions import COMPILE_MODES, SWITCHES, FusionConfig, compile_model
from .model import TinyLlama


def _parse_fusions(text: str) -> FusionConfig:
    return FusionConfig.from_names(text.split(","))


@dataclass(frozen=True)
class Options:
    """fusions: which fusions are on (``compile_mode`` is taken from ``compile``);
    compile: None, or the ``torch.compile`` mode applied after the weights are loaded."""

    fusions: FusionConfig = option(
        FusionConfig(), f"comma-separated fusions to turn on: {', '.join(SWITCHES)}; or all / "
        "none (default: all)", parse=_parse_fusions)
    compile: str | None = option(None, "also torch.compile the model with this mode",
                                 choices=COMPILE_MODES)

    def fusion_config(self) -> FusionConfig:
        return dataclasses.replace(self.fusions,
                                   compile_mode=self.compile or self.fusions.compile_mode)


def build(config: TinyLlamaConfig, options: Options) -> TinyLlama:
    """Version 2 with the requested fusions; under the same seed it holds the same
    initial weights as version 1 (TinyLlama builds version 1 first, then fuses)."""
    return TinyLlama(config, options.fusion_config())


def prepare(model: TinyLlama, options: Options, device: torch.device,
            dtype: torch.dtype) -> TinyLlama:
    return compile_model(model, device)


def describe(model: TinyLlama) -> dict:
    """JSON ``extra``: the fusions and the compile mode."""
    return {"fusions": model.fusions.enabled(), "fusion_label": model.fusions.label(),
            "compile_mode": model.fusions.compile_mode}


SPEC = VersionSpec(name="v2", model_cls=TinyLlama, options=Options, build=build,
                   prepare=prepare, describe=describe)
