"""The compute dtype of v4's fused GEMMs, shared by every kernel file (not a kernel itself).

The fused kernels read the weights in whatever dtype they are stored (the fp32 master
parameters) and cast each tile to the *compute dtype* in registers right before ``tl.dot``.
Under ``torch.autocast`` the compute dtype is the autocast dtype; otherwise it is the
weights' dtype. Casting in the kernel instead of calling ``weight.to(bf16)`` first is what
keeps the forward at one launch per fused op: an autocast'ed ``nn.Linear`` launches a cast
kernel per weight per step on top of the GEMM.
"""
from __future__ import annotations

import torch
import triton.language as tl

TL = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}


def resolve(compute_dtype, weight: torch.Tensor) -> torch.dtype:
    """``compute_dtype`` if given (checked), else the weight's dtype."""
    dtype = weight.dtype if compute_dtype is None else compute_dtype
    if dtype not in TL:
        raise TypeError(f"compute dtype must be float32, float16 or bfloat16, got {dtype}")
    return dtype


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The active autocast dtype for ``device_type``, or None when autocast is off."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None
