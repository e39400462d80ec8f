"""RMSNorm and fused residual-add + RMSNorm: Triton forward and backward.

``y = x * rstd * weight`` with ``rstd = 1 / sqrt(mean(x^2) + eps)``, all arithmetic in fp32.
The forward keeps ``rstd`` (one fp32 per row) so the backward does not redo the reduction.

The fused variant ``add_rms_norm(x, residual, w)`` returns ``(norm(x + residual), x + residual)``:
the residual stream is read once and written once instead of add (read 2, write 1) followed
by a norm (read 1 again).

Backward, per row with ``xhat = x * rstd`` and ``g = dy * w``::

    dx = rstd * (g - xhat * mean(g * xhat))
    dw = sum over rows of dy * xhat

``dw`` is a reduction across rows: each program walks a strided set of rows and keeps its
partial sum in fp32 registers, writes one fp32 row of partials, and a final ``sum(0)`` over
those few rows finishes it. No atomics, so the result is deterministic.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import runtime

MAX_HIDDEN = 65536  # one row must fit one block of registers / interpreter arrays


@triton.jit
def _rms_norm_fwd_kernel(X, R, W, Y, H, RSTD, n_rows, n_cols, eps,
                         HAS_RESIDUAL: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                         BLOCK: tl.constexpr):
    """BLOCK_ROWS rows per program. X, R, Y, H: (rows, n_cols) contiguous; RSTD: (rows,) fp32."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # int64 offsets
    cols = tl.arange(0, BLOCK)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    offs = rows[:, None] * n_cols + cols[None, :]
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        x += tl.load(R + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(H + offs, x.to(H.dtype.element_ty), mask=mask)
    # exercise: begin rmsnorm-fwd
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / n_cols + eps)
    tl.store(RSTD + rows, rstd, mask=rows < n_rows)
    w = tl.load(W + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    y = x * rstd[:, None] * w[None, :]
    # exercise: end
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_bwd_kernel(DY, DH, H, W, RSTD, DX, DW_PARTIAL, n_rows, n_cols, rows_per_program,
                         HAS_DH: tl.constexpr, BLOCK: tl.constexpr):
    """Program p handles rows [p*rows_per_program, (p+1)*rows_per_program).

    H is the normalized input (x, or x + residual for the fused variant); DH, when present,
    is the gradient arriving on that sum from its other use (the residual stream).
    DW_PARTIAL: (programs, n_cols) fp32, one partial weight gradient per program.
    """
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros([BLOCK], dtype=tl.float32)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    row_offset = row_start.to(tl.int64) * n_cols  # int64 and loop-carried: no overflow
    for row in range(row_start, row_end):
        offs = row_offset + cols
        h = tl.load(H + offs, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + offs, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + row)
        # exercise: begin rmsnorm-bwd
        xhat = h * rstd
        g = dy * w
        dx = rstd * (g - xhat * (tl.sum(g * xhat, axis=0) / n_cols))
        # exercise: end
        if HAS_DH:
            dx += tl.load(DH + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(DX + offs, dx.to(DX.dtype.element_ty), mask=mask)
        # exercise: begin rmsnorm-bwd
        dw += dy * xhat
        # exercise: end
        row_offset += n_cols
    tl.store(DW_PARTIAL + pid * n_cols + cols, dw, mask=mask)


def _block(n_cols: int) -> int:
    if n_cols > MAX_HIDDEN:
        raise ValueError(f"rms_norm supports hidden sizes up to {MAX_HIDDEN}, got {n_cols}")
    return triton.next_power_of_2(n_cols)


def _num_warps(block: int) -> int:
    return min(max(block // 256, 1), 16)


def _forward(x2d, residual2d, weight, eps):
    rows, n_cols = x2d.shape
    block = _block(n_cols)
    rstd = runtime.new_output((rows,), torch.float32, x2d.device)
    h = None
    if residual2d is not None:
        h = runtime.new_output((rows, n_cols), torch.promote_types(x2d.dtype, residual2d.dtype),
                               x2d.device)
    # y takes the dtype of what is normalized (x, or the sum), as the eager RMSNorm does.
    y = runtime.new_output((rows, n_cols), x2d.dtype if h is None else h.dtype, x2d.device)
    # Several short rows per program keep a program's tile near 4K elements.
    block_rows = max(1, min(16, 4096 // block))
    runtime.count("rms_norm_fwd")
    _rms_norm_fwd_kernel[(triton.cdiv(rows, block_rows),)](
        x2d, residual2d if residual2d is not None else x2d, weight, y, h if h is not None else y,
        rstd, rows, n_cols, eps, HAS_RESIDUAL=residual2d is not None, BLOCK_ROWS=block_rows,
        BLOCK=block, num_warps=_num_warps(block * block_rows))
    return y, h, rstd


def rms_norm_backward(dy, dh, h, weight, rstd):
    rows, n_cols = h.shape
    block = _block(n_cols)
    # Enough programs to fill the GPU; each owns a contiguous run of rows and one dw partial.
    target = torch.cuda.get_device_properties(h.device).multi_processor_count * 2 \
        if h.is_cuda else 4
    programs = max(1, min(rows, target))
    rows_per_program = triton.cdiv(rows, programs)
    programs = triton.cdiv(rows, rows_per_program)
    dx = runtime.new_output((rows, n_cols), h.dtype, h.device)
    dw_partial = runtime.new_output((programs, n_cols), torch.float32, h.device)
    runtime.count("rms_norm_bwd")
    _rms_norm_bwd_kernel[(programs,)](
        dy, dh if dh is not None else dy, h, weight, rstd, dx, dw_partial, rows, n_cols,
        rows_per_program, HAS_DH=dh is not None, BLOCK=block, num_warps=_num_warps(block))
    return dx, dw_partial.sum(0).to(weight.dtype)


class RMSNormFunction(torch.autograd.Function):
    """x: (..., N) fp32/fp16/bf16, weight: (N,) -> y: (..., N) in x's dtype."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        shape = x.shape
        x2d = x.reshape(-1, shape[-1])
        y, _, rstd = _forward(x2d, None, weight, eps)
        ctx.save_for_backward(x2d, weight, rstd)
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy):
        x2d, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(dy.reshape(x2d.shape).contiguous(), None, x2d, weight, rstd)
        return dx.view(dy.shape), dw, None


class AddRMSNormFunction(torch.autograd.Function):
    """(x, residual): (..., N) -> (norm(x + residual), x + residual).

    Both outputs take the promoted dtype of x and residual (the fp32 residual stream stays
    fp32 under autocast); each input gets its gradient back in its own dtype.
    """

    @staticmethod
    def forward(ctx, x, residual, weight, eps):
        shape = x.shape
        y, h, rstd = _forward(x.reshape(-1, shape[-1]), residual.reshape(-1, shape[-1]),
                              weight, eps)
        ctx.save_for_backward(h, weight, rstd)
        ctx.dtypes, ctx.shape = (x.dtype, residual.dtype), shape
        return y.view(shape), h.view(shape)

    @staticmethod
    def backward(ctx, dy, dh):
        h, weight, rstd = ctx.saved_tensors
        # autograd passes None for an output whose gradient is unused.
        dy = torch.zeros_like(h) if dy is None else dy.reshape(h.shape).contiguous()
        dh = None if dh is None else dh.reshape(h.shape).contiguous()
        dsum, dw = rms_norm_backward(dy, dh, h, weight, rstd)
        x_dtype, r_dtype = ctx.dtypes
        dsum = dsum.view(ctx.shape)
        return dsum.to(x_dtype), dsum.to(r_dtype), dw, None


def _check(x, weight, eps, name="x"):
    x = runtime.check_tensor(x, name)
    weight = runtime.check_tensor(weight, "weight", dim=1)
    if x.dim() < 1 or x.shape[-1] != weight.shape[0]:
        raise ValueError(f"{name} of shape {tuple(x.shape)} does not end in the weight's size "
                         f"{weight.shape[0]}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return x, weight


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x: (..., N), weight: (N,) -> (..., N) in x's dtype. Non-contiguous x is copied."""
    x, weight = _check(x, weight, eps)
    return RMSNormFunction.apply(x, weight, float(eps))


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                 eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(rms_norm(x + residual), x + residual)``; x, residual: (..., N)."""
    x, weight = _check(x, weight, eps)
    residual = runtime.check_tensor(residual, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"residual shape {tuple(residual.shape)} != x shape {tuple(x.shape)}")
    return AddRMSNormFunction.apply(x, residual, weight, float(eps))


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Plain PyTorch ``rms_norm``: fp32 statistics, the result in x's dtype.

    The independent check for this kernel's test and the eager baseline of its benchmark.
    """
    x32 = x.float()
    return (weight.float() * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))
            ).to(x.dtype)
