"""RMSNorm folded into the gate/up projection, SwiGLU in its epilogue: one launch.

Forward, for token rows ``x`` (M, K)::

    g = rstd * (x * norm_w) @ W_gate^T,  u = rstd * (x * norm_w) @ W_up^T,  y = silu(g) * u

As in ``norm_qkv_rope``, the norm is a prologue (``norm_w`` scales each K tile as it is
loaded; ``rstd`` scales the accumulators at the end), and the gate and up accumulators of
one (rows, columns) tile live in the same program, so neither (M, I) projection is ever
written: only ``y`` is. That is the largest activation of the layer, saved three times over.

Backward (the honest composition): the normalized input is recomputed from the saved
``rstd``; ``g`` and ``u`` are recomputed with two torch matmuls (cheaper in memory than
saving two (M, I) tensors); version 3's SwiGLU backward kernel gives dg, du
(``swiglu_bwd``); torch matmuls give dX_norm and the weight gradients; version 3's RMSNorm
backward kernel (``rms_norm_bwd``) gives dx and d norm_w.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from version3_triton import block_sizes, runtime
from version3_triton.kernels import rms_norm as v3_rms_norm
from version3_triton.kernels import swiglu as v3_swiglu
from version3_triton.kernels.dot import dot

from .compute_dtype import TL, resolve
from .norm_prologue import normed_x_tile


@triton.jit
def _norm_gate_up_swiglu_kernel(X, NW, WG, WU, Y, RSTD, M, N, K, eps, DOT: tl.constexpr,
                                IEEE: tl.constexpr,
                                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                                BLOCK_K: tl.constexpr):
    """X: (M, K); WG, WU: (N, K); Y: (M, N); RSTD: (M,) fp32. Program (pid_m, pid_n)."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k0 = tl.arange(0, BLOCK_K)
    m_ok = offs_m < M
    n_ok = offs_n < N
    acc_g = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    acc_u = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    sum_sq = tl.zeros([BLOCK_M], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < K
        xg, tile_sq = normed_x_tile(X, NW, offs_m, m_ok, offs_k, k_ok, K)
        sum_sq += tile_sq
        w_offs = offs_n[None, :].to(tl.int64) * K + offs_k[:, None]
        w_mask = k_ok[:, None] & n_ok[None, :]
        wg = tl.load(WG + w_offs, mask=w_mask, other=0.0)
        wu = tl.load(WU + w_offs, mask=w_mask, other=0.0)
        xn = xg.to(DOT)
        acc_g += dot(xn, wg.to(DOT), IEEE)
        acc_u += dot(xn, wu.to(DOT), IEEE)
    rstd = 1.0 / tl.sqrt(sum_sq / K + eps)
    if pid_n == 0:
        tl.store(RSTD + offs_m, rstd, mask=m_ok)
    # Round g and u to the GEMM dtype (what two unfused projections would store), then the
    # activation in fp32 (a low-precision sigmoid loses its mantissa near 0 and 1).
    g = (acc_g * rstd[:, None]).to(DOT).to(tl.float32)
    u = (acc_u * rstd[:, None]).to(DOT).to(tl.float32)
    y = g * tl.sigmoid(g) * u
    tl.store(Y + offs_m[:, None] * N + offs_n[None, :], y.to(Y.dtype.element_ty),
             mask=m_ok[:, None] & n_ok[None, :])


class NormGateUpSwiGLUFunction(torch.autograd.Function):
    """x: (M, K); norm_w: (K,); wg, wu: (N, K) -> silu(g) * u: (M, N) in compute dtype cdt."""

    @staticmethod
    def forward(ctx, x, norm_w, wg, wu, eps, cdt):
        m, k = x.shape
        n = wg.shape[0]
        y = runtime.new_output((m, n), cdt, x.device)
        rstd = runtime.new_output((m,), torch.float32, x.device)
        cfg = block_sizes.choose("norm_gate_up_swiglu", cdt)
        block_m, block_n = cfg.blocks["BLOCK_M"], cfg.blocks["BLOCK_N"]
        runtime.count("norm_gate_up_swiglu_fwd")
        _norm_gate_up_swiglu_kernel[(triton.cdiv(m, block_m), triton.cdiv(n, block_n))](
            x, norm_w, wg, wu, y, rstd, m, n, k, eps, DOT=TL[cdt], IEEE=cdt == torch.float32,
            **cfg.blocks, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        ctx.save_for_backward(x, norm_w, wg, wu, rstd)
        ctx.cdt = cdt
        return y

    @staticmethod
    def backward(ctx, dy):
        x, norm_w, wg, wu, rstd = ctx.saved_tensors
        cdt = ctx.cdt
        xn = ((x.float() * rstd[:, None]) * norm_w.float()).to(cdt)
        wg_c, wu_c = wg.to(cdt), wu.to(cdt)  # no copy when already cdt
        g, u = xn @ wg_c.t(), xn @ wu_c.t()
        dg, du = v3_swiglu.swiglu_backward(dy, g, u)
        dxn = dg @ wg_c + du @ wu_c
        dwg, dwu = (dg.t() @ xn).to(wg.dtype), (du.t() @ xn).to(wu.dtype)
        dx, dnw = v3_rms_norm.rms_norm_backward(dxn.contiguous(), None, x, norm_w, rstd)
        return dx, dnw, dwg, dwu, None, None


def norm_gate_up_swiglu(x, norm_w, wg, wu, eps: float = 1e-6,
                        compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``silu(rms_norm(x) @ wg^T) * (rms_norm(x) @ wu^T)`` in one kernel.

    x: (..., K) fp32/fp16/bf16; norm_w: (K,); wg, wu: (N, K), one dtype. ``compute_dtype``
    (default: the weights' dtype) is what ``tl.dot`` multiplies and the output's dtype.
    Returns (..., N).
    """
    x = runtime.check_tensor(x, "x")
    norm_w = runtime.check_tensor(norm_w, "norm_w", dim=1)
    wg = runtime.check_tensor(wg, "wg", dim=2)
    wu = runtime.check_tensor(wu, "wu", dim=2)
    k = x.shape[-1] if x.dim() else 0
    if x.numel() == 0:
        raise ValueError(f"x is empty: shape {tuple(x.shape)}")
    if norm_w.shape[0] != k or wg.shape[1] != k or wg.shape != wu.shape:
        raise ValueError(f"x has {k} features; norm_w {tuple(norm_w.shape)}, wg "
                         f"{tuple(wg.shape)} and wu {tuple(wu.shape)} must match it and "
                         "each other")
    if wg.dtype != wu.dtype:
        raise TypeError(f"wg and wu must share one dtype, got {wg.dtype} and {wu.dtype}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    y = NormGateUpSwiGLUFunction.apply(x.reshape(-1, k), norm_w, wg, wu, float(eps),
                                       resolve(compute_dtype, wg))
    return y.view(*x.shape[:-1], wg.shape[0])


def reference(x, norm_w, wg, wu, eps: float = 1e-6,
              compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Plain PyTorch ``norm_gate_up_swiglu``: version 3's plain references of RMSNorm and
    SwiGLU around two matmuls in the weights' dtype (no Triton kernel). ``compute_dtype``
    is accepted for the same signature and not used. The test's check, the bench's baseline.
    """
    xn = v3_rms_norm.reference(x, norm_w, eps).to(wg.dtype)
    return v3_swiglu.reference(xn @ wg.t(), xn @ wu.t())
