"""Bytes and FLOPs of one kernel call, counted analytically from its shape.

Each bench script divides these by its measured time, so every row can be placed on a
roofline (FLOP per byte, FLOP/s). They are counts of what the computation must do, not
measurements of what a kernel did:

- bytes: the minimum traffic, each tensor the pass needs read once and each result written
  once (a real kernel's traffic can only be larger: re-reads, spills). Small per-row
  vectors (weights, rstd, lse) are left out where stated.
- FLOPs: the arithmetic of the textbook formula, one FLOP per add, multiply, divide,
  compare or transcendental (exp, rsqrt); per-row scalar work is left out where stated.

``fwd`` is one forward call; ``step`` is forward + backward together, the "fwd+bwd" pass the
scripts time (``benchmarks.kernels.grad_step``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Work:
    fwd_bytes: int
    fwd_flops: int
    step_bytes: int | None = None    # None: inference-only kernel, no backward
    step_flops: int | None = None


def rms_norm(tokens: int, hidden: int, itemsize: int) -> Work:
    """``y = w * x * rsqrt(mean(x^2) + eps)`` over x of shape (tokens, hidden).

    Bytes: forward reads x, writes y (2 tensors); backward reads x and dy, writes dx
    (3 more); w and the per-row rstd are not counted.
    FLOPs: forward 4 per element (square, accumulate, scale by rstd, scale by w); backward
    9 per element (g = dy*w, x*rstd, g*xhat, accumulate, xhat*mean, subtract, scale by
    rstd, dy*xhat for dw, accumulate dw). Per-row mean/rsqrt not counted.
    """
    n = tokens * hidden
    return Work(fwd_bytes=2 * n * itemsize, fwd_flops=4 * n,
                step_bytes=5 * n * itemsize, step_flops=(4 + 9) * n)


def swiglu(tokens: int, intermediate: int, itemsize: int) -> Work:
    """``y = silu(gate) * up`` with gate, up of shape (tokens, intermediate).

    Bytes: forward reads gate, up, writes y (3 tensors); backward reads dy, gate, up and
    writes dgate, dup (5 more).
    FLOPs: forward 5 per element (sigmoid = exp, add, divide; gate*sigmoid; times up);
    backward 11 per element (sigmoid again 3, silu 1, dup = dy*silu 1, dsilu =
    s*(1 + g*(1-s)) 4, dgate = dy*up*dsilu 2).
    """
    n = tokens * intermediate
    return Work(fwd_bytes=3 * n * itemsize, fwd_flops=5 * n,
                step_bytes=8 * n * itemsize, step_flops=(5 + 11) * n)


def rope(batch: int, seq: int, q_heads: int, kv_heads: int, head_dim: int,
         itemsize: int) -> Work:
    """Rotary embedding on q (batch, seq, q_heads, head_dim) and k (.., kv_heads, ..).

    Bytes: forward reads q, k and writes both; backward the same for the gradients.
    cos/sin tables (seq x head_dim) are not counted.
    FLOPs: 3 per element each way (a pair (x1, x2) -> (x1*c - x2*s, x2*c + x1*s) is 4
    multiplies and 2 adds); the backward is the inverse rotation, the same count.
    """
    n = batch * seq * (q_heads + kv_heads) * head_dim
    return Work(fwd_bytes=2 * n * itemsize, fwd_flops=3 * n,
                step_bytes=4 * n * itemsize, step_flops=6 * n)


def cross_entropy(tokens: int, vocab: int, itemsize: int) -> Work:
    """Mean cross-entropy of logits (tokens, vocab) against integer labels.

    Bytes: forward reads the logits twice and writes the gradient (the Triton kernel's
    real traffic, which computes the gradient in the forward); forward+backward adds a read
    and a write of the gradient for the scaling. Labels and the loss are not counted.
    FLOPs: forward 4 per logit (running max, subtract, exp, accumulate); backward 3 per
    logit (p = exp(x - lse) is a subtract and an exp; times dloss/tokens). The per-row
    log, label pick and one-hot subtract are not counted.
    """
    n = tokens * vocab
    return Work(fwd_bytes=3 * n * itemsize, fwd_flops=4 * n,
                step_bytes=5 * n * itemsize, step_flops=(4 + 3) * n)


def flash_attention(batch: int, seq: int, q_heads: int, kv_heads: int, head_dim: int,
                    itemsize: int) -> Work:
    """Causal GQA attention, q (batch, seq, q_heads, head_dim), k and v (.., kv_heads, ..).

    FLOPs (the FlashAttention-2 convention, useful causal work): forward
    4 * batch * q_heads * seq^2 * head_dim / 2 (two matmuls, 2 FLOPs per multiply-add, half
    the score matrix masked); backward 2.5x the forward (five matmuls instead of two).
    Bytes: forward reads q, k, v and writes o; backward reads q, k, v, o, do and writes
    dq, dk, dv. The per-row logsumexp is not counted.
    """
    q = batch * seq * q_heads * head_dim * itemsize     # bytes of q (= o, do, dq)
    kv = batch * seq * kv_heads * head_dim * itemsize   # bytes of k (= v, dk, dv)
    fwd_flops = 4 * batch * q_heads * seq * seq * head_dim // 2
    fwd_bytes = 2 * q + 2 * kv
    return Work(fwd_bytes=fwd_bytes, fwd_flops=fwd_flops,
                step_bytes=fwd_bytes + 4 * q + 4 * kv, step_flops=fwd_flops * 7 // 2)


def decode_attention(batch: int, q_heads: int, kv_heads: int, head_dim: int, length: int,
                     itemsize: int) -> Work:
    """One query per sequence, q (batch, q_heads, head_dim), over ``length`` cached keys.

    Bytes: the valid part of the K and V caches (batch, kv_heads, length, head_dim) read
    once, plus q read and the output written.
    FLOPs: 4 * batch * q_heads * length * head_dim (q.k and p.v, 2 FLOPs per multiply-add);
    the softmax (about 4 per score) is not counted. Inference only: no backward.
    """
    kv = 2 * batch * kv_heads * length * head_dim * itemsize
    return Work(fwd_bytes=kv + 2 * batch * q_heads * head_dim * itemsize,
                fwd_flops=4 * batch * q_heads * length * head_dim)


# ---- version 4's fused kernels (forward only: their backward is version 3's kernels and
# torch GEMMs, timed by those benches) -------------------------------------------------------

def linear_residual(tokens: int, k: int, n: int, itemsize: int) -> Work:
    """``residual + a @ w^T`` with a (tokens, k), w (n, k), residual and out (tokens, n).

    Bytes: a, w and residual read once, out written once. FLOPs: 2*tokens*k*n for the GEMM
    plus one add per output element.
    """
    return Work(fwd_bytes=(tokens * k + n * k + 2 * tokens * n) * itemsize,
                fwd_flops=2 * tokens * k * n + tokens * n)


def norm_gate_up_swiglu(tokens: int, hidden: int, inter: int, itemsize: int) -> Work:
    """``silu(norm(x) @ wg^T) * (norm(x) @ wu^T)``, x (tokens, hidden), wg and wu (inter, hidden).

    Bytes: x, wg and wu read once, the (tokens, inter) result written once; the norm gain
    is not counted. FLOPs: two GEMMs (4*tokens*hidden*inter), the norm's 4 per element of x,
    SwiGLU's 5 per element of the result.
    """
    return Work(fwd_bytes=(tokens * hidden + 2 * inter * hidden + tokens * inter) * itemsize,
                fwd_flops=4 * tokens * hidden * inter + 4 * tokens * hidden + 5 * tokens * inter)


def norm_qkv_rope(tokens: int, hidden: int, q_heads: int, kv_heads: int, head_dim: int,
                  itemsize: int) -> Work:
    """``rope(norm(x) @ [wq; wk; wv]^T)``, x (tokens, hidden), out (tokens, q+2kv heads, D).

    Bytes: x and the three weights read once, out written once; the norm gain and the
    cos/sin tables are not counted. FLOPs: the GEMM (2*tokens*hidden*out_features), the
    norm's 4 per element of x, RoPE's 3 per element of q and k.
    """
    out = (q_heads + 2 * kv_heads) * head_dim
    return Work(fwd_bytes=(tokens * hidden + out * hidden + tokens * out) * itemsize,
                fwd_flops=2 * tokens * hidden * out + 4 * tokens * hidden
                + 3 * tokens * (q_heads + kv_heads) * head_dim)


def decode_layer_weight_bytes(hidden: int, q_heads: int, kv_heads: int, head_dim: int,
                              inter: int, itemsize: int) -> int:
    """Bytes of one layer's seven matrices (q, k, v, o, gate, up, down); norm gains not counted."""
    return (hidden * (2 * q_heads + 2 * kv_heads) * head_dim + 3 * hidden * inter) * itemsize


def decode_layer(batch: int, hidden: int, q_heads: int, kv_heads: int, head_dim: int,
                 inter: int, length: int, itemsize: int) -> Work:
    """One decoder layer for one new token per sequence, attending over ``length`` positions.

    Bytes: the layer's weights read once (``decode_layer_weight_bytes``), the valid K and V
    cache read once; the per-token activations (batch x hidden) are not counted.
    FLOPs: 2 per weight per sequence (the GEMVs) plus attention's
    4 * batch * q_heads * length * head_dim; norms, RoPE, softmax and SwiGLU not counted.
    """
    weights = decode_layer_weight_bytes(hidden, q_heads, kv_heads, head_dim, inter, itemsize)
    params = weights // itemsize
    kv = 2 * batch * kv_heads * length * head_dim * itemsize
    return Work(fwd_bytes=weights + kv,
                fwd_flops=2 * batch * params + 4 * batch * q_heads * length * head_dim)
