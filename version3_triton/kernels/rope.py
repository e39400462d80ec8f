"""Rotary position embedding (rotate-half, the Llama convention) on Q and K in one launch.

For each head vector split into halves ``x1 = x[:D/2]``, ``x2 = x[D/2:]``::

    y1 = x1 * cos - x2 * sin
    y2 = x2 * cos + x1 * sin

The rotation is orthogonal, so the backward is the same kernel with ``sin`` negated.
One program handles one token: it loads that position's cos/sin once and rotates all
query heads and all key heads (GQA: the two head counts differ). Q and K are token-major,
``(B, S, heads, D)`` as the projections produce them, so no transpose is needed.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import runtime


@triton.jit
def _rotate_heads(X, Y, base, cos, sin, n_heads, half,
                  BLOCK_H: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """Rotate the n_heads vectors of one token starting at element ``base``."""
    heads = tl.arange(0, BLOCK_H)[:, None]
    cols = tl.arange(0, BLOCK_HALF)[None, :]
    mask = (heads < n_heads) & (cols < half)
    offs = base + heads * (2 * half) + cols
    x1 = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(X + offs + half, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + offs, (x1 * cos - x2 * sin).to(Y.dtype.element_ty), mask=mask)
    tl.store(Y + offs + half, (x2 * cos + x1 * sin).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(Q, K, QO, KO, COS, SIN, seq, n_q_heads, n_k_heads, half, cos_stride,
                 SIGN: tl.constexpr, BLOCK_HQ: tl.constexpr, BLOCK_HK: tl.constexpr,
                 BLOCK_HALF: tl.constexpr):
    """Q, QO: (B, S, Hq, D); K, KO: (B, S, Hk, D), contiguous; COS/SIN: (S, >= D/2) rows.

    SIGN = 1 rotates forward, -1 backward (the transpose of the rotation).
    """
    token = tl.program_id(0).to(tl.int64)   # b * S + s
    pos = token % seq
    cols = tl.arange(0, BLOCK_HALF)
    cmask = cols < half
    cos = tl.load(COS + pos * cos_stride + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    sin = SIGN * tl.load(SIN + pos * cos_stride + cols, mask=cmask, other=0.0).to(tl.float32)
    sin = sin[None, :]
    _rotate_heads(Q, QO, token * n_q_heads * 2 * half, cos, sin, n_q_heads, half,
                  BLOCK_HQ, BLOCK_HALF)
    _rotate_heads(K, KO, token * n_k_heads * 2 * half, cos, sin, n_k_heads, half,
                  BLOCK_HK, BLOCK_HALF)


def _launch(q, k, cos, sin, sign):
    bsz, seq, hq, d = q.shape
    hk = k.shape[2]
    qo = runtime.new_output(q.shape, q.dtype, q.device)
    ko = runtime.new_output(k.shape, k.dtype, k.device)
    runtime.count("rope_fwd" if sign > 0 else "rope_bwd")
    _rope_kernel[(bsz * seq,)](
        q, k, qo, ko, cos, sin, seq, hq, hk, d // 2, cos.stride(0), SIGN=sign,
        BLOCK_HQ=triton.next_power_of_2(hq), BLOCK_HK=triton.next_power_of_2(hk),
        BLOCK_HALF=triton.next_power_of_2(d // 2), num_warps=4)
    return qo, ko


class RoPEFunction(torch.autograd.Function):
    """q: (B, S, Hq, D), k: (B, S, Hk, D), cos/sin: (S, D) -> rotated (q, k), same dtypes."""

    @staticmethod
    def forward(ctx, q, k, cos, sin):
        ctx.save_for_backward(cos, sin)
        ctx.meta = (q.shape, q.dtype, k.shape, k.dtype, q.device)
        return _launch(q, k, cos, sin, 1)

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        q_shape, q_dtype, k_shape, k_dtype, device = ctx.meta
        # autograd passes None for an unused output: its gradient is zero.
        dq = torch.zeros(q_shape, dtype=q_dtype, device=device) if dq is None else dq.contiguous()
        dk = torch.zeros(k_shape, dtype=k_dtype, device=device) if dk is None else dk.contiguous()
        dq, dk = _launch(dq, dk, cos, sin, -1)
        return dq, dk, None, None


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Rotate q: (B, S, Hq, D) and k: (B, S, Hk, D) by cos/sin: (S, D) (rotate-half tables,
    ``cos[:, :D/2] == cos[:, D/2:]``, as ``RotaryEmbedding`` returns). Gradients flow to q and
    k, not to the tables. Non-contiguous inputs are copied."""
    q = runtime.check_tensor(q, "q", dim=4)
    k = runtime.check_tensor(k, "k", dim=4)
    cos = runtime.check_tensor(cos, "cos", dim=2)
    sin = runtime.check_tensor(sin, "sin", dim=2)
    bsz, seq, _, d = q.shape
    if k.shape[0] != bsz or k.shape[1] != seq or k.shape[3] != d:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree in batch, "
                         "sequence and head_dim")
    if d % 2:
        raise ValueError(f"rotary embedding needs an even head_dim, got {d}")
    if cos.shape != (seq, d) or sin.shape != (seq, d):
        raise ValueError(f"cos/sin must have shape (seq, head_dim) = ({seq}, {d}), got "
                         f"{tuple(cos.shape)} and {tuple(sin.shape)}")
    return RoPEFunction.apply(q, k, cos, sin)
