"""version2_fused: version 1's TinyLLaMA with PyTorch-level fusions, each with its own switch.

Fused QKV and gate/up GEMMs, SDPA with native GQA, ``F.rms_norm``, RoPE on Q and K
together, optional ``torch.compile``. Same config, weights and CLI as version 1.
"""
from .fusions import COMPILE_MODES, SWITCHES, FusionConfig, FusionUnavailableError, compile_model
from .model import TinyLlama
from .spec import SPEC, Options

VERSION_NAME = SPEC.name

__all__ = ["TinyLlama", "FusionConfig", "FusionUnavailableError", "SWITCHES", "COMPILE_MODES",
           "compile_model", "Options", "SPEC", "VERSION_NAME"]
