"""Pieces of the GEMM prologue shared by the fused kernels that fold RMSNorm into a
projection (norm_qkv_rope, norm_gate_up_swiglu, decode_layer). Not kernels themselves.

The norm is folded by scaling the *weights' input* by the gain inside the K loop and the
accumulator by rstd afterwards: ``rms_norm(x) @ W^T == rstd * ((x * g) @ W^T)``, so each
K tile of x is read once, for both the sum of squares and the GEMM.
"""
import triton
import triton.language as tl


@triton.jit
def normed_x_tile(X, NW, offs_rows, rows_ok, offs_k, k_ok, K):
    """One (rows, BLOCK_K) tile of x: returns (x * gain in fp32, sum of x^2 over the tile)."""
    x = tl.load(X + offs_rows[:, None] * K + offs_k[None, :],
                mask=rows_ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
    nw = tl.load(NW + offs_k, mask=k_ok, other=0.0).to(tl.float32)
    return x * nw[None, :], tl.sum(x * x, axis=1)


@triton.jit
def qkv_weight_base(WQ, WK, WV, head, n_q, n_kv, head_dim, K):
    """Start of the (head_dim, K) weight rows of fused head ``head`` (q heads, then k, then v)."""
    if head < n_q:
        base = WQ + head.to(tl.int64) * head_dim * K
    elif head < n_q + n_kv:
        base = WK + (head - n_q).to(tl.int64) * head_dim * K
    else:
        base = WV + (head - n_q - n_kv).to(tl.int64) * head_dim * K
    return base
