"""version3_triton: TinyLLaMA with Triton kernels (RMSNorm, RoPE, SwiGLU, flash attention,
decode attention, cross-entropy), each with a real backward.

Importing this package decides how the kernels run (``runtime``): compiled on a GPU, or
under ``TRITON_INTERPRET=1`` on CPU tensors when there is none.
"""
from . import runtime  # noqa: F401  (first: sets TRITON_INTERPRET before any kernel exists)
from version1_baseline.spec import VersionSpec

from .model import TinyLlama, causal_lm_loss, describe

VERSION_NAME = "v3"

# Training uses the fused cross-entropy kernel, so the harness times what v3 really runs.
SPEC = VersionSpec(name=VERSION_NAME, model_cls=TinyLlama, describe=describe,
                   loss_fn=causal_lm_loss)

__all__ = ["TinyLlama", "causal_lm_loss", "describe", "SPEC", "VERSION_NAME", "runtime"]
