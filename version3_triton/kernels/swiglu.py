"""SwiGLU activation ``silu(gate) * up``: Triton forward and backward.

Elementwise, so the only goal is bandwidth: forward reads 2 and writes 1 tensor; backward
reads 3 and writes 2, recomputing the sigmoid instead of saving it. The sigmoid is computed
in fp32 whatever the storage dtype (bf16 sigmoid loses most of its mantissa near 0 and 1),
and every value is cast explicitly on store.

With ``s = sigmoid(g)``::

    d gate = dy * up * s * (1 + g * (1 - s))
    d up   = dy * g * s
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import runtime

BLOCK = 1024


@triton.jit
def _swiglu_fwd_kernel(G, U, Y, n, BLOCK: tl.constexpr):
    """G, U, Y: n contiguous elements."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    y = g * tl.sigmoid(g) * u
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_bwd_kernel(DY, G, U, DG, DU, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dy = tl.load(DY + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(g)
    dg = dy * u * s * (1.0 + g * (1.0 - s))
    du = dy * g * s
    tl.store(DG + offs, dg.to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offs, du.to(DU.dtype.element_ty), mask=mask)


def _grid(n):
    return (triton.cdiv(n, BLOCK),)


class SwiGLUFunction(torch.autograd.Function):
    """gate, up: same shape and dtype -> silu(gate) * up, same shape and dtype."""

    @staticmethod
    def forward(ctx, gate, up):
        y = runtime.new_output(gate.shape, gate.dtype, gate.device)
        runtime.count("swiglu_fwd")
        _swiglu_fwd_kernel[_grid(gate.numel())](gate, up, y, gate.numel(), BLOCK=BLOCK,
                                                num_warps=4)
        ctx.save_for_backward(gate, up)
        return y

    @staticmethod
    def backward(ctx, dy):
        gate, up = ctx.saved_tensors
        return swiglu_backward(dy, gate, up)


def swiglu_backward(dy: torch.Tensor, gate: torch.Tensor, up: torch.Tensor):
    """Gradients of ``silu(gate) * up``: dy, gate, up of one shape -> (dgate, dup), one launch.

    Public because version 4's fused gate/up kernel reuses it in its backward.
    """
    dy = dy.to(gate.dtype).contiguous()
    dg = runtime.new_output(gate.shape, gate.dtype, gate.device)
    du = runtime.new_output(up.shape, up.dtype, up.device)
    runtime.count("swiglu_bwd")
    _swiglu_bwd_kernel[_grid(gate.numel())](dy, gate, up, dg, du, gate.numel(), BLOCK=BLOCK,
                                            num_warps=4)
    return dg, du


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for gate, up of equal shape and dtype (fp32/fp16/bf16)."""
    gate = runtime.check_tensor(gate, "gate")
    up = runtime.check_tensor(up, "up")
    if gate.shape != up.shape or gate.dtype != up.dtype:
        raise ValueError(f"gate {tuple(gate.shape)} {gate.dtype} and up {tuple(up.shape)} "
                         f"{up.dtype} must have the same shape and dtype")
    if gate.numel() == 0:
        raise ValueError("swiglu got empty tensors")
    return SwiGLUFunction.apply(gate, up)


def reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch ``swiglu``: ``silu(gate) * up`` (the test's check, the bench's baseline)."""
    return torch.nn.functional.silu(gate) * up
