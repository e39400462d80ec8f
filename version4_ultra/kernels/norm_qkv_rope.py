"""RMSNorm folded into the QKV projection, RoPE applied in its epilogue: one launch.

Forward, for token rows ``x`` (M, K) and the three projection weights::

    qkv[m, head] = rope(rstd[m] * (x[m] * norm_w) @ W_head^T)     (RoPE on Q and K heads only)

The norm is a *prologue*: each K tile of ``x`` is scaled by ``norm_w`` as it is loaded, the
sum of squares is accumulated from the same tile, and ``rstd`` (a per-row scalar) multiplies
the accumulator once at the end. So the normalized activations never exist in memory.

One program computes one head (``head_dim`` output columns) for a block of rows, as two
accumulators: the first and the second half of the head. Rotate-half RoPE pairs column
``d`` with ``d + D/2``, so with both halves in registers the rotation is elementwise and
needs no shuffle. Query, key and value heads share one launch: the program's head index
picks the weight (``wq``, ``wk`` or ``wv``: the model passes row blocks of ``qkv_proj``).

Output: one buffer (B, S, Hq + 2*Hkv, D): heads ``[0, Hq)`` are Q, then K, then V. The
model slices it into strided views that the flash-attention kernel reads directly.

Backward (not a single kernel; the honest composition): version 3's RoPE kernel with the
rotation transposed (``rope_bwd``), three torch matmuls for dX_norm and three for the weight
gradients, and version 3's RMSNorm backward kernel (``rms_norm_bwd``) for dx and d norm_w.
The normalized input is recomputed from the saved ``rstd`` (one fp32 per row).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from version3_triton import block_sizes, runtime
from version3_triton.kernels import rms_norm as v3_rms_norm
from version3_triton.kernels import rope as v3_rope
from version3_triton.kernels.dot import dot

from .compute_dtype import TL, resolve
from .norm_prologue import normed_x_tile, qkv_weight_base


@triton.jit
def _norm_qkv_rope_kernel(X, NW, WQ, WK, WV, COS, SIN, OUT, RSTD,
                          M, K, seq, n_q, n_kv, head_dim, half, cos_stride, eps,
                          DOT: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                          BLOCK_H: tl.constexpr):
    """X: (M, K) contiguous; W*: (heads*D, K); COS/SIN: (seq, >=D) rows; OUT: (M, NH, D);
    RSTD: (M,) fp32. Program (pid_m, head)."""
    pid_m = tl.program_id(0)
    head = tl.program_id(1)
    n_heads = n_q + 2 * n_kv
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_h = tl.arange(0, BLOCK_H)
    offs_k0 = tl.arange(0, BLOCK_K)
    m_ok = offs_m < M
    h_ok = offs_h < half
    w_base = qkv_weight_base(WQ, WK, WV, head, n_q, n_kv, head_dim, K)
    acc1 = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    sum_sq = tl.zeros([BLOCK_M], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < K
        xg, tile_sq = normed_x_tile(X, NW, offs_m, m_ok, offs_k, k_ok, K)
        sum_sq += tile_sq
        w_mask = k_ok[:, None] & h_ok[None, :]
        # W^T tiles (BLOCK_K, BLOCK_H) of the head's first and second half.
        w1 = tl.load(w_base + offs_h[None, :] * K + offs_k[:, None], mask=w_mask, other=0.0)
        w2 = tl.load(w_base + (half + offs_h[None, :]) * K + offs_k[:, None], mask=w_mask,
                     other=0.0)
        xn = xg.to(DOT)
        acc1 += dot(xn, w1.to(DOT), IEEE)
        acc2 += dot(xn, w2.to(DOT), IEEE)
    rstd = 1.0 / tl.sqrt(sum_sq / K + eps)
    if head == 0:
        tl.store(RSTD + offs_m, rstd, mask=m_ok)  # one writer per row, for the backward
    a = acc1 * rstd[:, None]
    b = acc2 * rstd[:, None]
    mask = m_ok[:, None] & h_ok[None, :]
    if head < n_q + n_kv:
        pos = offs_m % seq  # row m is token (batch m // seq, position m % seq)
        cos = tl.load(COS + pos[:, None] * cos_stride + offs_h[None, :], mask=mask, other=0.0)
        sin = tl.load(SIN + pos[:, None] * cos_stride + offs_h[None, :], mask=mask, other=0.0)
        cos = cos.to(tl.float32)
        sin = sin.to(tl.float32)
        a, b = a * cos - b * sin, b * cos + a * sin
    out = OUT + (offs_m[:, None] * n_heads + head) * head_dim + offs_h[None, :]
    tl.store(out, a.to(OUT.dtype.element_ty), mask=mask)
    tl.store(out + half, b.to(OUT.dtype.element_ty), mask=mask)


class NormQKVRoPEFunction(torch.autograd.Function):
    """x: (B, S, K); norm_w: (K,); wq: (Hq*D, K), wk/wv: (Hkv*D, K); cos/sin: (S, D)
    -> qkv: (B, S, Hq + 2*Hkv, D) in the compute dtype ``cdt``."""

    @staticmethod
    def forward(ctx, x, norm_w, wq, wk, wv, cos, sin, eps, head_dim, cdt):
        bsz, seq, k = x.shape
        n_q, n_kv = wq.shape[0] // head_dim, wk.shape[0] // head_dim
        n_heads = n_q + 2 * n_kv
        x2d = x.reshape(-1, k)
        rows = x2d.shape[0]
        qkv = runtime.new_output((bsz, seq, n_heads, head_dim), cdt, x.device)
        rstd = runtime.new_output((rows,), torch.float32, x.device)
        cfg = block_sizes.choose("norm_qkv_rope", cdt, head_dim)
        block_h = max(16, triton.next_power_of_2(head_dim // 2))  # tl.dot needs N >= 16
        runtime.count("norm_qkv_rope_fwd")
        _norm_qkv_rope_kernel[(triton.cdiv(rows, cfg.blocks["BLOCK_M"]), n_heads)](
            x2d, norm_w, wq, wk, wv, cos, sin, qkv, rstd, rows, k, seq, n_q, n_kv, head_dim,
            head_dim // 2, cos.stride(0), eps, DOT=TL[cdt], IEEE=cdt == torch.float32,
            BLOCK_H=block_h, **cfg.blocks, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        ctx.save_for_backward(x2d, norm_w, wq, wk, wv, cos, sin, rstd)
        ctx.meta = (x.shape, n_q, n_kv, head_dim, cdt)
        return qkv

    @staticmethod
    def backward(ctx, dqkv):
        x2d, norm_w, wq, wk, wv, cos, sin, rstd = ctx.saved_tensors
        x_shape, n_q, n_kv, d, cdt = ctx.meta
        bsz, seq, _ = x_shape
        dqkv = dqkv.contiguous()
        # Undo the rotation (version 3's RoPE kernel, sign -1 = the transpose).
        dq, dk = v3_rope.launch_rope(dqkv[:, :, :n_q].contiguous(),
                                 dqkv[:, :, n_q:n_q + n_kv].contiguous(), cos, sin, -1)
        dv = dqkv[:, :, n_q + n_kv:]
        dq, dk, dv = (t.reshape(bsz * seq, -1) for t in (dq, dk, dv))
        xn = ((x2d.float() * rstd[:, None]) * norm_w.float()).to(cdt)
        wq_c, wk_c, wv_c = wq.to(cdt), wk.to(cdt), wv.to(cdt)  # no copy when already cdt
        dxn = dq @ wq_c + dk @ wk_c + dv @ wv_c
        dwq, dwk, dwv = ((g.t() @ xn).to(w.dtype) for g, w in ((dq, wq), (dk, wk), (dv, wv)))
        dx, dnw = v3_rms_norm.rms_norm_backward(dxn.contiguous(), None, x2d, norm_w, rstd)
        return dx.view(x_shape), dnw, dwq, dwk, dwv, None, None, None, None, None


def norm_qkv_rope(x, norm_w, wq, wk, wv, cos, sin, eps: float = 1e-6,
                  compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``rope(rms_norm(x, norm_w) @ [wq; wk; wv]^T)`` per head, in one kernel.

    x: (B, S, K) fp32/fp16/bf16; norm_w: (K,); wq: (Hq*D, K); wk, wv: (Hkv*D, K), one dtype;
    cos, sin: (S, D) rotate-half tables. ``compute_dtype`` (default: the weights' dtype) is
    what ``tl.dot`` multiplies and the output's dtype; the weights are cast per tile in the
    kernel. Returns qkv: (B, S, Hq + 2*Hkv, D), RoPE applied to the Q and K heads.
    """
    x = runtime.check_tensor(x, "x", dim=3)
    norm_w = runtime.check_tensor(norm_w, "norm_w", dim=1)
    wq, wk, wv = (runtime.check_tensor(w, n, dim=2) for w, n in ((wq, "wq"), (wk, "wk"),
                                                                   (wv, "wv")))
    cos = runtime.check_tensor(cos, "cos", dim=2)
    sin = runtime.check_tensor(sin, "sin", dim=2)
    bsz, seq, k = x.shape
    d = cos.shape[1]
    if 0 in x.shape:
        raise ValueError(f"x is empty: shape {tuple(x.shape)}")
    if norm_w.shape[0] != k or any(w.shape[1] != k for w in (wq, wk, wv)):
        raise ValueError(f"x has {k} features; norm_w {tuple(norm_w.shape)} and the weights "
                         f"{tuple(wq.shape)}, {tuple(wk.shape)}, {tuple(wv.shape)} must match")
    if wq.dtype != wk.dtype or wq.dtype != wv.dtype:
        raise TypeError(f"wq, wk, wv must share one dtype, got {wq.dtype}, {wk.dtype}, "
                        f"{wv.dtype}")
    if d % 2 or d < 2:
        raise ValueError(f"rotary embedding needs an even head_dim, got {d}")
    if wq.shape[0] % d or wk.shape[0] % d or wk.shape != wv.shape:
        raise ValueError(f"weights {tuple(wq.shape)}, {tuple(wk.shape)}, {tuple(wv.shape)} "
                         f"are not whole heads of head_dim {d} (k and v must match)")
    if cos.shape != (seq, d) or sin.shape != (seq, d):
        raise ValueError(f"cos/sin must have shape (seq, head_dim) = ({seq}, {d}), got "
                         f"{tuple(cos.shape)} and {tuple(sin.shape)}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return NormQKVRoPEFunction.apply(x, norm_w, wq, wk, wv, cos, sin, float(eps), d,
                                     resolve(compute_dtype, wq))


def reference(x, norm_w, wq, wk, wv, cos, sin, eps: float = 1e-6,
              compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Plain PyTorch ``norm_qkv_rope``: version 3's plain references of RMSNorm and RoPE
    around three matmuls in the weights' dtype (no Triton kernel). x: (B, S, hidden);
    cos, sin: (S, D). Returns (B, S, Hq + 2 Hkv, D): q, k rotated, then v. ``compute_dtype``
    is accepted for the same signature and not used. The test's check, the bench's baseline.
    """
    xn = v3_rms_norm.reference(x, norm_w, eps).to(wq.dtype)
    bsz, seq, _ = x.shape
    d = cos.shape[1]
    q, k, v = ((xn @ w.t()).view(bsz, seq, -1, d) for w in (wq, wk, wv))
    q, k = v3_rope.reference(q, k, cos, sin)
    return torch.cat((q, k, v), dim=2)
