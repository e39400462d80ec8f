"""A projection with the residual add in its epilogue: ``out = residual + a @ w^T``, one launch.

Used twice per layer: the attention output projection (``o_proj``) and the MLP's down
projection (``down_proj``). Same kernel, so one file (the architecture's one kernel per
file); the model names which projection it is at each call.

Without the epilogue the projection writes its (M, N) result and an add kernel reads it back
together with the residual stream; here the residual tile is read once, in the epilogue,
and only the sum is written. Accumulation is fp32; the output takes the promoted dtype of
``a`` and ``residual`` (under autocast the fp32 residual stream stays fp32, as in version 1).

Backward is plain torch (two matmuls; the residual's gradient is the output's): there is
nothing to fuse in ``d residual = d out``, and cuBLAS is the right tool for the two GEMMs.
So this Function launches no Triton kernel backwards, and counts none.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from version3_triton import block_sizes, runtime
from version3_triton.kernels.dot import dot

from .compute_dtype import TL, resolve


@triton.jit
def _linear_residual_kernel(A, W, R, OUT, M, N, K, DOT: tl.constexpr, IEEE: tl.constexpr,
                            GROUP_M: tl.constexpr,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_K: tl.constexpr):
    """A: (M, K), W: (N, K), R/OUT: (M, N), all contiguous."""
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    # Grouped tile order: GROUP_M row-tiles walk the column tiles together, so the weight
    # tiles they share are still in L2 (the Triton matmul tutorial's swizzle).
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k0 = tl.arange(0, BLOCK_K)
    m_ok = offs_m < M
    n_ok = offs_n < N
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < K
        a = tl.load(A + offs_m[:, None] * K + offs_k[None, :], mask=m_ok[:, None] & k_ok[None, :],
                    other=0.0)
        w = tl.load(W + offs_n[None, :].to(tl.int64) * K + offs_k[:, None],
                    mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc += dot(a.to(DOT), w.to(DOT), IEEE)
    mask = m_ok[:, None] & n_ok[None, :]
    offs = offs_m[:, None] * N + offs_n[None, :]
    r = tl.load(R + offs, mask=mask, other=0.0).to(tl.float32)
    # Round the product to the GEMM's dtype first, as an unfused linear followed by an add
    # would, so the fused result matches version 1 under autocast as well as in fp32.
    y = r + acc.to(DOT).to(tl.float32)
    tl.store(OUT + offs, y.to(OUT.dtype.element_ty), mask=mask)


class LinearResidualFunction(torch.autograd.Function):
    """a: (M, K), w: (N, K), residual: (M, N) -> residual + a @ w^T: (M, N), the product
    computed in dtype ``cdt``; the output in promote(cdt, residual.dtype)."""

    @staticmethod
    def forward(ctx, a, w, residual, name, cdt):
        m, k = a.shape
        n = w.shape[0]
        out = runtime.new_output((m, n), torch.promote_types(cdt, residual.dtype),
                                 a.device)
        cfg = block_sizes.choose("linear_residual", cdt)
        block_m, block_n = cfg.blocks["BLOCK_M"], cfg.blocks["BLOCK_N"]
        runtime.count(f"{name}_fwd")
        grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
        _linear_residual_kernel[grid](a, w, residual, out, m, n, k,
                                      DOT=TL[cdt], IEEE=cdt == torch.float32, GROUP_M=8,
                                      **cfg.blocks, num_warps=cfg.num_warps,
                                      num_stages=cfg.num_stages)
        ctx.save_for_backward(a, w)
        ctx.residual_dtype, ctx.cdt = residual.dtype, cdt
        return out

    @staticmethod
    def backward(ctx, dout):
        a, w = ctx.saved_tensors
        cdt = ctx.cdt
        g = dout.to(cdt)
        da = (g @ w.to(cdt)).to(a.dtype)
        dw = (g.t() @ a.to(cdt)).to(w.dtype)
        return da, dw, dout.to(ctx.residual_dtype), None, None


def linear_residual(a: torch.Tensor, w: torch.Tensor, residual: torch.Tensor,
                    name: str = "linear_residual",
                    compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``residual + a @ w^T`` in one kernel.

    a: (..., K) fp32/fp16/bf16; w: (N, K); residual: (..., N) with a's leading shape. The
    product is computed in ``compute_dtype`` (default: w's dtype; both operands are cast
    per tile in the kernel) and rounded to it, as a separate linear would. Returns (..., N)
    in ``promote(compute_dtype, residual.dtype)``. ``name`` labels the launch counter
    (``<name>_fwd``), e.g. ``o_proj_residual`` or ``down_residual``.
    """
    a = runtime.check_tensor(a, "a")
    w = runtime.check_tensor(w, "w", dim=2)
    residual = runtime.check_tensor(residual, "residual")
    if a.dim() < 1 or a.shape[-1] != w.shape[1]:
        raise ValueError(f"a of shape {tuple(a.shape)} must end in w's in-features {w.shape[1]}")
    if residual.shape != (*a.shape[:-1], w.shape[0]):
        raise ValueError(f"residual shape {tuple(residual.shape)} must be "
                         f"{(*a.shape[:-1], w.shape[0])} (a's rows, w's out-features)")
    if a.numel() == 0 or w.numel() == 0:
        raise ValueError(f"empty input: a {tuple(a.shape)}, w {tuple(w.shape)}")
    out = LinearResidualFunction.apply(a.reshape(-1, a.shape[-1]), w,
                                       residual.reshape(-1, w.shape[0]), name,
                                       resolve(compute_dtype, w))
    return out.view(residual.shape)


def reference(a: torch.Tensor, w: torch.Tensor, residual: torch.Tensor,
              name: str = "linear_residual",
              compute_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Plain PyTorch ``linear_residual``: ``residual + a @ w^T`` (the GEMM in w's dtype).

    ``name`` and ``compute_dtype`` are accepted for the same signature and not used. The
    test's check and the bench's eager baseline.
    """
    return residual + a.to(w.dtype) @ w.t()
