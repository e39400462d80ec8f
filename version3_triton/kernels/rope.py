"""Rotary position embedding (rotate-half, the Llama convention) on Q and K in one launch.

For each head vector split into halves ``x1 = x[:D/2]``, ``x2 = x[D/2:]``::

    y1 = x1 * cos - x2 * sin
    y2 = x2 * cos + x1 * sin

The rotation is orthogonal, so the backward is the same kernel with ``sin`` negated.
One program handles a run of tokens and rotates all their query heads and all their key
heads (GQA: the two head counts differ), so one launch covers Q and K. Q and K are token-major,
``(B, S, heads, D)`` as the projections produce them, so no transpose is needed.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import runtime


@triton.jit
def _rotate_rows(X, Y, COS, SIN, first_token, n_tokens, seq, n_heads, half, cos_stride, sign,
                 BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """Rotate the head vectors (rows of length 2*half) of tokens [first_token, +BLOCK_T)."""
    local = tl.arange(0, BLOCK_R)
    rows = first_token * n_heads + local                       # row = token * n_heads + head
    row_ok = (local < BLOCK_T * n_heads) & (rows < n_tokens * n_heads)
    pos = (rows // n_heads) % seq                              # token = b * seq + position
    cols = tl.arange(0, BLOCK_HALF)[None, :]
    mask = row_ok[:, None] & (cols < half)
    # The tables are tiny and shared by every head: these gathers hit in cache.
    cos = tl.load(COS + pos[:, None] * cos_stride + cols, mask=mask, other=0.0).to(tl.float32)
    sin = sign * tl.load(SIN + pos[:, None] * cos_stride + cols, mask=mask,
                         other=0.0).to(tl.float32)
    offs = rows[:, None] * (2 * half) + cols
    x1 = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(X + offs + half, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + offs, (x1 * cos - x2 * sin).to(Y.dtype.element_ty), mask=mask)
    tl.store(Y + offs + half, (x2 * cos + x1 * sin).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(Q, K, QO, KO, COS, SIN, n_tokens, seq, n_q_heads, n_k_heads, half, cos_stride,
                 SIGN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_RQ: tl.constexpr,
                 BLOCK_RK: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """Q, QO: (B, S, Hq, D); K, KO: (B, S, Hk, D), contiguous; COS/SIN: (S, >= D/2) rows.

    Program p rotates every query and key head of tokens [p*BLOCK_T, (p+1)*BLOCK_T).
    SIGN = 1 rotates forward, -1 backward (the transpose of the rotation).
    """
    first = tl.program_id(0).to(tl.int64) * BLOCK_T
    _rotate_rows(Q, QO, COS, SIN, first, n_tokens, seq, n_q_heads, half, cos_stride, SIGN,
                 BLOCK_T, BLOCK_RQ, BLOCK_HALF)
    _rotate_rows(K, KO, COS, SIN, first, n_tokens, seq, n_k_heads, half, cos_stride, SIGN,
                 BLOCK_T, BLOCK_RK, BLOCK_HALF)


def launch_rope(q, k, cos, sin, sign):
    bsz, seq, hq, d = q.shape
    hk = k.shape[2]
    n_tokens = bsz * seq
    # About 64 query rows per program; a power of two so the row tiles are too.
    block_t = max(1, 64 // triton.next_power_of_2(hq))
    qo = runtime.new_output(q.shape, q.dtype, q.device)
    ko = runtime.new_output(k.shape, k.dtype, k.device)
    runtime.count("rope_fwd" if sign > 0 else "rope_bwd")
    # 8 warps: at head_dim 80 (half 40, rows not 16-byte aligned) a 64 x 64 tile on 4 warps
    # spilled on sm_80 / sm_90 (8 to 368 B, compile gate); 8 are spill-free at 32..128.
    _rope_kernel[(triton.cdiv(n_tokens, block_t),)](
        q, k, qo, ko, cos, sin, n_tokens, seq, hq, hk, d // 2, cos.stride(0), SIGN=sign,
        BLOCK_T=block_t, BLOCK_RQ=triton.next_power_of_2(block_t * hq),
        BLOCK_RK=triton.next_power_of_2(block_t * hk),
        BLOCK_HALF=triton.next_power_of_2(d // 2), num_warps=8)
    return qo, ko


class RoPEFunction(torch.autograd.Function):
    """q: (B, S, Hq, D), k: (B, S, Hk, D), cos/sin: (S, D) -> rotated (q, k), same dtypes."""

    @staticmethod
    def forward(ctx, q, k, cos, sin):
        ctx.save_for_backward(cos, sin)
        ctx.meta = (q.shape, q.dtype, k.shape, k.dtype, q.device)
        return launch_rope(q, k, cos, sin, 1)

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin = ctx.saved_tensors
        q_shape, q_dtype, k_shape, k_dtype, device = ctx.meta
        # autograd passes None for an unused output: its gradient is zero.
        dq = torch.zeros(q_shape, dtype=q_dtype, device=device) if dq is None else dq.contiguous()
        dk = torch.zeros(k_shape, dtype=k_dtype, device=device) if dk is None else dk.contiguous()
        dq, dk = launch_rope(dq, dk, cos, sin, -1)
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


def reference(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Plain PyTorch ``apply_rope``: rotate-half RoPE on token-major (B, S, heads, D) q and k.

    cos, sin: (S, D). Returns (q, k) rotated, each in its own dtype. The test's check and
    the bench's baseline.
    """
    def rotate(t):
        c, s = cos[:, None].to(t.dtype), sin[:, None].to(t.dtype)   # (S, 1, D): over heads
        t1, t2 = t.chunk(2, dim=-1)
        return t * c + torch.cat((-t2, t1), dim=-1) * s
    return rotate(q), rotate(k)
