"""Causal grouped-query flash attention (FlashAttention-2 style): Triton forward and backward.

Layout is token-major, as the projections produce it, so no transpose is ever copied:
q: (B, Sq, H, D), k and v: (B, Sk, Hkv, D) (any strides with a unit last stride, e.g. a
permuted view of the KV cache), out: (B, Sq, H, D) contiguous. H must be a multiple of Hkv;
query head h reads key/value head ``h // (H // Hkv)`` directly: K/V are never repeated.

Causal masking is bottom-right aligned: with ``offset = Sk - Sq`` (cached positions), query
i sits at absolute position ``offset + i`` and sees keys ``j <= offset + i``.

Forward: one program per (query block, batch*head) streams key blocks with an online
softmax (running max ``m``, running sum ``l``; exp2 with the scale folded into log2 units)
and stops at the last key block its queries can see, so fully masked blocks cost nothing.
It saves ``lse = log(sum(exp(scale * q.k)))`` per query row: (B, H, Sq) fp32.

Backward recomputes ``P = exp(scale * QK^T - lse)`` block by block instead of storing it:
* ``delta = rowsum(dO * O)`` (a small kernel),
* dK, dV: one program per (key block, batch*kv_head) loops over the query heads of its
  group and the query blocks that can see it, accumulating in fp32 (no atomics),
* dQ: one program per (query block, batch*head) loops over the visible key blocks.
With ``dS = P * (dP - delta)``, ``dP = dO V^T``: dV = P^T dO, dK = scale dS^T Q, dQ = scale dS K.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .. import block_sizes, runtime
from .dot import dot
from .softmax_base2 import LN2, LOG2E

MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 128


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, sm_scale,
                sqb, sqs, sqh, skb, sks, skh, svb, svs, svh,
                n_heads, groups, seq_q, seq_k, head_dim,
                CAUSAL: tl.constexpr, IEEE: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // n_heads
    h = bh % n_heads
    kvh = h // groups
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < head_dim
    m_ok = offs_m < seq_q
    q = tl.load(Q + b.to(tl.int64) * sqb + h * sqh + offs_m[:, None] * sqs + offs_d[None, :],
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    k_base = K + b.to(tl.int64) * skb + kvh * skh
    v_base = V + b.to(tl.int64) * svb + kvh * svh
    qk_scale = sm_scale * LOG2E
    offset = seq_k - seq_q
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    hi = seq_k
    if CAUSAL:
        # Key blocks past the last query of this block are fully masked: never visit them.
        hi = tl.minimum(seq_k, offset + start_m + BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        kn = start_n + offs_n
        kv_mask = (kn[:, None] < seq_k) & d_ok[None, :]
        k_t = tl.load(k_base + kn[None, :] * sks + offs_d[:, None],
                      mask=(kn[None, :] < seq_k) & d_ok[:, None], other=0.0)
        qk = dot(q, k_t, IEEE) * qk_scale
        valid = kn[None, :] < seq_k
        if CAUSAL:
            valid = valid & (kn[None, :] <= offset + offs_m[:, None])
        qk = tl.where(valid, qk, float("-inf"))
        # exercise: begin online-softmax
        # Every row sees key 0 in the first block, so m_new is finite from then on.
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(qk - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + kn[:, None] * svs + offs_d[None, :], mask=kv_mask, other=0.0)
        acc = acc * alpha[:, None] + dot(p.to(v.dtype), v, IEEE)
        m_i = m_new
        # exercise: end
    acc = acc / l_i[:, None]
    out_offs = (b.to(tl.int64) * seq_q * n_heads + offs_m[:, None] * n_heads + h) * head_dim \
        + offs_d[None, :]
    tl.store(O + out_offs, acc.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    lse = (m_i + tl.log2(l_i)) * LN2  # back to natural-log units
    tl.store(LSE + bh.to(tl.int64) * seq_q + offs_m, lse, mask=m_ok)


@triton.jit
def _bwd_delta_kernel(O, DO, DELTA, n_heads, seq_q, head_dim,
                      BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """delta[b, h, i] = sum_d O[b, i, h, d] * dO[b, i, h, d]; O, dO: (B, Sq, H, D) contiguous."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    bh = tl.program_id(1)
    b = bh // n_heads
    h = bh % n_heads
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m[:, None] < seq_q) & (offs_d[None, :] < head_dim)
    offs = (b.to(tl.int64) * seq_q * n_heads + offs_m[:, None] * n_heads + h) * head_dim \
        + offs_d[None, :]
    o = tl.load(O + offs, mask=mask, other=0.0).to(tl.float32)
    do = tl.load(DO + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(DELTA + bh.to(tl.int64) * seq_q + offs_m, tl.sum(o * do, axis=1),
             mask=offs_m < seq_q)


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, sm_scale,
                     sqb, sqs, sqh, skb, sks, skh, svb, svs, svh,
                     n_heads, n_kv_heads, groups, seq_q, seq_k, head_dim,
                     CAUSAL: tl.constexpr, IEEE: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """DK, DV: (B, Sk, Hkv, D) contiguous; DO: (B, Sq, H, D) contiguous."""
    start_n = tl.program_id(0) * BLOCK_N
    bkv = tl.program_id(1)
    b = bkv // n_kv_heads
    kvh = bkv % n_kv_heads
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < head_dim
    n_ok = offs_n < seq_k
    kv_mask = n_ok[:, None] & d_ok[None, :]
    k = tl.load(K + b.to(tl.int64) * skb + kvh * skh + offs_n[:, None] * sks + offs_d[None, :],
                mask=kv_mask, other=0.0)
    v = tl.load(V + b.to(tl.int64) * svb + kvh * svh + offs_n[:, None] * svs + offs_d[None, :],
                mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * LOG2E
    offset = seq_k - seq_q
    lo = 0
    if CAUSAL:
        # Query blocks that end before (start_n - offset) cannot see this key block.
        lo = tl.maximum(start_n - offset, 0) // BLOCK_M * BLOCK_M
    for g in range(0, groups):
        h = kvh * groups + g
        bh = b * n_heads + h
        for start_m in range(lo, seq_q, BLOCK_M):
            offs_m = start_m + offs_m0
            m_ok = offs_m < seq_q
            q = tl.load(Q + b.to(tl.int64) * sqb + h * sqh + offs_m[:, None] * sqs
                        + offs_d[None, :], mask=m_ok[:, None] & d_ok[None, :], other=0.0)
            do = tl.load(DO + (b.to(tl.int64) * seq_q * n_heads + offs_m[:, None] * n_heads + h)
                         * head_dim + offs_d[None, :], mask=m_ok[:, None] & d_ok[None, :],
                         other=0.0)
            lse = tl.load(LSE + bh.to(tl.int64) * seq_q + offs_m, mask=m_ok, other=0.0)
            delta = tl.load(DELTA + bh.to(tl.int64) * seq_q + offs_m, mask=m_ok, other=0.0)
            qk_t = dot(k, tl.trans(q), IEEE)                       # (BLOCK_N, BLOCK_M)
            valid = n_ok[:, None] & m_ok[None, :]
            if CAUSAL:
                valid = valid & (offs_n[:, None] <= offset + offs_m[None, :])
            p_t = tl.where(valid, tl.exp2(qk_t * qk_scale - lse[None, :] * LOG2E),
                           0.0)
            dv += dot(p_t.to(do.dtype), do, IEEE)
            dp_t = dot(v, tl.trans(do), IEEE)
            ds_t = p_t * (dp_t - delta[None, :])
            dk += dot(ds_t.to(q.dtype), q, IEEE)
    out_offs = (b.to(tl.int64) * seq_k * n_kv_heads + offs_n[:, None] * n_kv_heads + kvh) \
        * head_dim + offs_d[None, :]
    tl.store(DK + out_offs, (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + out_offs, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, sm_scale,
                   sqb, sqs, sqh, skb, sks, skh, svb, svs, svh,
                   n_heads, groups, seq_q, seq_k, head_dim,
                   CAUSAL: tl.constexpr, IEEE: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """DQ: (B, Sq, H, D) contiguous."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // n_heads
    h = bh % n_heads
    kvh = h // groups
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < head_dim
    m_ok = offs_m < seq_q
    q_mask = m_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + b.to(tl.int64) * sqb + h * sqh + offs_m[:, None] * sqs + offs_d[None, :],
                mask=q_mask, other=0.0)
    row_offs = (b.to(tl.int64) * seq_q * n_heads + offs_m[:, None] * n_heads + h) * head_dim \
        + offs_d[None, :]
    do = tl.load(DO + row_offs, mask=q_mask, other=0.0)
    lse = tl.load(LSE + bh.to(tl.int64) * seq_q + offs_m, mask=m_ok, other=0.0)
    delta = tl.load(DELTA + bh.to(tl.int64) * seq_q + offs_m, mask=m_ok, other=0.0)
    k_base = K + b.to(tl.int64) * skb + kvh * skh
    v_base = V + b.to(tl.int64) * svb + kvh * svh
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * LOG2E
    offset = seq_k - seq_q
    hi = seq_k
    if CAUSAL:
        hi = tl.minimum(seq_k, offset + start_m + BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        n_ok = offs_n < seq_k
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_n[:, None] * sks + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + offs_n[:, None] * svs + offs_d[None, :], mask=kv_mask, other=0.0)
        qk = dot(q, tl.trans(k), IEEE)
        valid = m_ok[:, None] & n_ok[None, :]
        if CAUSAL:
            valid = valid & (offs_n[None, :] <= offset + offs_m[:, None])
        p = tl.where(valid, tl.exp2(qk * qk_scale - lse[:, None] * LOG2E), 0.0)
        dp = dot(do, tl.trans(v), IEEE)
        ds = p * (dp - delta[:, None])
        dq += dot(ds.to(k.dtype), k, IEEE)
    tl.store(DQ + row_offs, (dq * sm_scale).to(DQ.dtype.element_ty), mask=q_mask)


def _strides(t):
    return t.stride(0), t.stride(1), t.stride(2)


class FlashAttentionFunction(torch.autograd.Function):
    """q: (B, Sq, H, D), k/v: (B, Sk, Hkv, D) -> out (B, Sq, H, D) in q's dtype."""

    @staticmethod
    def forward(ctx, q, k, v, causal, sm_scale):
        bsz, seq_q, n_heads, d = q.shape
        seq_k, n_kv = k.shape[1], k.shape[2]
        cfg = block_sizes.choose("flash_fwd", q.dtype, d)
        block_d = max(16, triton.next_power_of_2(d))
        out = runtime.new_output(q.shape, q.dtype, q.device)
        lse = runtime.new_output((bsz, n_heads, seq_q), torch.float32, q.device)
        runtime.count("flash_attention_fwd")
        _fwd_kernel[(triton.cdiv(seq_q, cfg.blocks["BLOCK_M"]), bsz * n_heads)](
            q, k, v, out, lse, sm_scale, *_strides(q), *_strides(k), *_strides(v),
            n_heads, n_heads // n_kv, seq_q, seq_k, d, CAUSAL=causal,
            IEEE=q.dtype == torch.float32, BLOCK_D=block_d, **cfg.blocks,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        bsz, seq_q, n_heads, d = q.shape
        seq_k, n_kv = k.shape[1], k.shape[2]
        dout = dout.contiguous()
        cfg = block_sizes.choose("flash_bwd", q.dtype, d)
        block_m, block_n = cfg.blocks["BLOCK_M"], cfg.blocks["BLOCK_N"]
        block_d = max(16, triton.next_power_of_2(d))
        ieee = q.dtype == torch.float32
        delta = runtime.new_output((bsz, n_heads, seq_q), torch.float32, q.device)
        runtime.count("flash_attention_bwd")
        _bwd_delta_kernel[(triton.cdiv(seq_q, block_m), bsz * n_heads)](
            out, dout, delta, n_heads, seq_q, d, BLOCK_M=block_m, BLOCK_D=block_d)
        dq = runtime.new_output(q.shape, q.dtype, q.device)
        dk = runtime.new_output((bsz, seq_k, n_kv, d), k.dtype, k.device)
        dv = runtime.new_output((bsz, seq_k, n_kv, d), v.dtype, v.device)
        common = dict(CAUSAL=ctx.causal, IEEE=ieee, BLOCK_M=block_m, BLOCK_N=block_n,
                      BLOCK_D=block_d, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        strides = (*_strides(q), *_strides(k), *_strides(v))
        _bwd_dkdv_kernel[(triton.cdiv(seq_k, block_n), bsz * n_kv)](
            q, k, v, dout, lse, delta, dk, dv, ctx.sm_scale, *strides,
            n_heads, n_kv, n_heads // n_kv, seq_q, seq_k, d, **common)
        _bwd_dq_kernel[(triton.cdiv(seq_q, block_m), bsz * n_heads)](
            q, k, v, dout, lse, delta, dq, ctx.sm_scale, *strides,
            n_heads, n_heads // n_kv, seq_q, seq_k, d, **common)
        return dq, dk, dv, None, None


def _unit_last_stride(t, name):
    t = runtime.check_tensor(t, name, dim=4, contiguous=False)
    return t if t.stride(-1) == 1 else t.contiguous()


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
                    sm_scale: float | None = None) -> torch.Tensor:
    """softmax(scale * q k^T + causal mask) v with grouped-query heads.

    q: (B, Sq, H, D); k, v: (B, Sk, Hkv, D); H % Hkv == 0; 16 <= D <= 128; one dtype among
    fp32/fp16/bf16; causal needs Sk >= Sq (the last Sq keys are the queries' own positions).
    Inputs may be strided views; a non-unit last stride is copied. Returns (B, Sq, H, D).
    """
    q, k, v = (_unit_last_stride(t, n) for t, n in ((q, "q"), (k, "k"), (v, "v")))
    bsz, seq_q, n_heads, d = q.shape
    if k.shape != v.shape or k.shape[0] != bsz or k.shape[3] != d:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must be (B, Sk, Hkv, D) "
                         f"matching q {tuple(q.shape)} in batch and head_dim")
    if not MIN_HEAD_DIM <= d <= MAX_HEAD_DIM:
        raise ValueError(f"flash_attention supports head_dim {MIN_HEAD_DIM}..{MAX_HEAD_DIM}, "
                         f"got {d}")
    if n_heads % k.shape[2]:
        raise ValueError(f"query heads ({n_heads}) must be a multiple of kv heads ({k.shape[2]})")
    if q.dtype != k.dtype or q.dtype != v.dtype:
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if 0 in q.shape or 0 in k.shape:
        raise ValueError(f"empty attention input: q {tuple(q.shape)}, k {tuple(k.shape)}")
    if causal and k.shape[1] < seq_q:
        raise ValueError(f"causal attention needs at least as many keys ({k.shape[1]}) "
                         f"as queries ({seq_q})")
    scale = 1.0 / math.sqrt(d) if sm_scale is None else float(sm_scale)
    return FlashAttentionFunction.apply(q, k, v, bool(causal), scale)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              sm_scale: float | None = None) -> torch.Tensor:
    """Plain PyTorch ``flash_attention``: K/V repeated for GQA, explicit mask, softmax.

    q: (B, Sq, H, D); k, v: (B, Sk, Hkv, D); the causal mask places the queries at the last
    Sq positions. Matmuls in the inputs' dtype, the softmax in at least fp32 (fp64 inputs
    stay fp64); returns (B, Sq, H, D) in q's dtype. The test's check and the bench's baseline.
    """
    groups = q.shape[2] // k.shape[2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    qh = q.transpose(1, 2)
    kh = k.transpose(1, 2).repeat_interleave(groups, 1)
    vh = v.transpose(1, 2).repeat_interleave(groups, 1)
    scores = (qh @ kh.transpose(-1, -2)) * scale
    if causal:
        seq_q, seq_k = q.shape[1], k.shape[1]
        q_pos = torch.arange(seq_k - seq_q, seq_k, device=q.device)[:, None]
        scores = scores.masked_fill(torch.arange(seq_k, device=q.device)[None] > q_pos,
                                    float("-inf"))
    p = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    return (p.to(q.dtype) @ vh).transpose(1, 2)
