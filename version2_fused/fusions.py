"""The fusion switches of version 2, what this torch offers, and ``torch.compile``.

Every fusion has its own switch so that an ablation can measure it alone. With every
switch off, version 2 computes exactly what version 1 computes.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from dataclasses import dataclass

import torch
import torch.nn.functional as F

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

# CLI / ablation name -> FusionConfig field. Order = the order of the ablation rows.
SWITCHES = {
    "qkv": "fused_qkv",
    "gate_up": "fused_gate_up",
    "sdpa": "sdpa",
    "rms_norm": "fused_rms_norm",
    "rope_qk": "rope_qk_together",
}


def _sdpa_has_native_gqa() -> bool:
    """True when ``F.scaled_dot_product_attention`` accepts ``enable_gqa`` (torch >= 2.5).

    Probed by calling it on a tiny input: the builtin has no Python signature to inspect.
    """
    if not hasattr(F, "scaled_dot_product_attention"):
        return False
    q, kv = torch.zeros(1, 2, 1, 2), torch.zeros(1, 1, 1, 2)
    try:
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
    except TypeError:
        return False
    return True


# What this torch build offers. Module-level so that tests can pretend an older torch.
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
HAS_NATIVE_GQA = _sdpa_has_native_gqa()
HAS_RMS_NORM = hasattr(F, "rms_norm")
HAS_COMPILE = hasattr(torch, "compile")


class FusionUnavailableError(RuntimeError):
    """A requested fusion that this torch build or device cannot run."""


@dataclass(frozen=True)
class FusionConfig:
    """Which fusions a version-2 model uses. Defaults: all of them, no ``torch.compile``.

    fused_qkv: Q, K and V projections as one GEMM (``qkv_proj``).
    fused_gate_up: the SwiGLU gate and up projections as one GEMM (``gate_up_proj``).
    sdpa: ``F.scaled_dot_product_attention`` instead of explicit mask + softmax.
    fused_rms_norm: ``F.rms_norm`` instead of the spelled-out normalization.
    rope_qk_together: rotate Q and K heads in one set of elementwise ops.
    compile_mode: None, or a ``torch.compile`` mode applied by ``compile_model``.
    """

    fused_qkv: bool = True
    fused_gate_up: bool = True
    sdpa: bool = True
    fused_rms_norm: bool = True
    rope_qk_together: bool = True
    compile_mode: str | None = None

    def __post_init__(self) -> None:
        for field in SWITCHES.values():
            value = getattr(self, field)
            if not isinstance(value, bool):
                raise TypeError(f"FusionConfig.{field} must be a bool, got {value!r}")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"unknown torch.compile mode {self.compile_mode!r}; "
                             f"choose one of {', '.join(COMPILE_MODES)}")

    @classmethod
    def none(cls) -> "FusionConfig":
        """Every switch off: version 1's math in version 2's code."""
        return cls(**{field: False for field in SWITCHES.values()})

    @classmethod
    def only(cls, name: str) -> "FusionConfig":
        """Exactly one fusion on, by its switch name (``qkv``, ``gate_up``, ...)."""
        return cls.from_names([name])

    @classmethod
    def from_names(cls, names, compile_mode: str | None = None) -> "FusionConfig":
        """Switches named in ``names`` on, the rest off. ``all`` / ``none`` are accepted."""
        names = [n.strip() for n in names if n.strip()]
        if names == ["all"]:
            return cls(compile_mode=compile_mode)
        if names in ([], ["none"]):
            return dataclasses.replace(cls.none(), compile_mode=compile_mode)
        unknown = sorted(set(names) - set(SWITCHES))
        if unknown:
            raise ValueError(f"unknown fusion switch(es) {unknown}; choose from "
                             f"{', '.join(SWITCHES)}, or 'all' / 'none'")
        return cls(**{field: name in names for name, field in SWITCHES.items()},
                   compile_mode=compile_mode)

    def enabled(self) -> list[str]:
        """Switch names that are on, in ablation order."""
        return [name for name, field in SWITCHES.items() if getattr(self, field)]

    def label(self) -> str:
        names = self.enabled()
        text = ("all" if len(names) == len(SWITCHES) else "+".join(names)) if names else "none"
        return text + (f" +compile({self.compile_mode})" if self.compile_mode else "")

    def check_supported(self) -> None:
        """Raise FusionUnavailableError for a switch this torch build cannot honour."""
        if self.sdpa and not HAS_SDPA:
            raise FusionUnavailableError(
                f"sdpa fusion requested but torch {torch.__version__} has no "
                "F.scaled_dot_product_attention (needs torch >= 2.0); turn off 'sdpa'")
        if self.fused_rms_norm and not HAS_RMS_NORM:
            raise FusionUnavailableError(
                f"rms_norm fusion requested but torch {torch.__version__} has no F.rms_norm "
                "(needs torch >= 2.4); turn off 'rms_norm'")
        if self.compile_mode is not None and not HAS_COMPILE:
            raise FusionUnavailableError(
                f"torch.compile mode {self.compile_mode!r} requested but torch "
                f"{torch.__version__} has no torch.compile (needs torch >= 2.0)")


def _cxx_compiler() -> str | None:
    """The C++ compiler inductor would use for CPU code, if one is on PATH."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def check_compile_device(device: torch.device) -> None:
    """Inductor needs a C++ compiler for CPU code and Triton for GPU code; say which is missing."""
    if device.type == "cpu" and _cxx_compiler() is None:
        raise FusionUnavailableError(
            "torch.compile on CPU needs a C++ compiler (g++ or clang++, or $CXX) for inductor, "
            "and none is on PATH; install one or drop --compile")
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        raise FusionUnavailableError(
            "torch.compile on GPU needs Triton for inductor, and it is not installed; "
            "install the 'triton' extra or drop --compile")


def compile_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Apply ``model.fusions.compile_mode`` in place (``nn.Module.compile``); returns model.

    In place, so the object keeps its class, ``config`` and ``new_cache``. Compilation
    itself happens lazily at the first call (the benchmark warm-up absorbs it).
    """
    mode = model.fusions.compile_mode
    if mode is None:
        return model
    model.fusions.check_supported()
    check_compile_device(device)
    model.static_kv_cache = True   # decode: one compiled graph for every position
    model.compile(mode=mode)
    return model
