"""Decode-time attention: one new query per sequence against the KV cache (inference only).

q: (B, H, D) for the single new position; the cache k/v: (B, Hkv, T, D) (the ``KVCache``
layout, any strides with a unit last stride) of which the first ``length`` positions are
valid. The new query sits after all of them, so no causal mask is needed.

Decode is bound by reading the cache, so one program serves one (batch, kv head) and all
``H // Hkv`` query heads that share it: each cached key/value is read once, not once per
query head. The group is padded to 16 rows because ``tl.dot`` needs M >= 16; that wastes
tensor-core work, which is free here. The softmax is the same online (running max / sum)
form as the prefill kernel.

Not done (documented, not hidden): split-K over long caches ("flash decoding"). With few
(batch, kv head) pairs and a long cache, this kernel leaves most of a GPU idle.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .. import block_sizes, runtime
from .dot import dot
from .flash_attention import MAX_HEAD_DIM, MIN_HEAD_DIM
from .softmax_base2 import LOG2E


@triton.jit
def _decode_kernel(Q, K, V, O, sm_scale, length,
                   skb, skh, sks, svb, svh, svs,
                   n_kv_heads, groups, head_dim, IEEE: tl.constexpr,
                   BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Q, O: (B, H, D) contiguous; K, V strided (B, Hkv, T, D)."""
    bkv = tl.program_id(0)
    b = bkv // n_kv_heads
    kvh = bkv % n_kv_heads
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    g_ok = offs_g < groups
    d_ok = offs_d < head_dim
    # Query heads kvh*groups .. kvh*groups+groups-1 of batch b are contiguous rows of Q.
    q_offs = (bkv.to(tl.int64) * groups + offs_g[:, None]) * head_dim + offs_d[None, :]
    q = tl.load(Q + q_offs, mask=g_ok[:, None] & d_ok[None, :], other=0.0)
    k_base = K + b.to(tl.int64) * skb + kvh * skh
    v_base = V + b.to(tl.int64) * svb + kvh * svh
    qk_scale = sm_scale * LOG2E
    m_i = tl.full([BLOCK_G], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)
    for start_n in range(0, length, BLOCK_N):
        offs_n = start_n + offs_n0
        n_ok = offs_n < length
        k_t = tl.load(k_base + offs_n[None, :] * sks + offs_d[:, None],
                      mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        s = dot(q, k_t, IEEE) * qk_scale
        s = tl.where(n_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + offs_n[:, None] * svs + offs_d[None, :],
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + dot(p.to(v.dtype), v, IEEE)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(O + q_offs, acc.to(O.dtype.element_ty), mask=g_ok[:, None] & d_ok[None, :])


def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                     length: int, sm_scale: float | None = None) -> torch.Tensor:
    """q: (B, H, D); k_cache, v_cache: (B, Hkv, T, D), positions [0, length) valid.

    Returns (B, H, D) in q's dtype. Inference only: raises if an input requires grad
    (training uses ``flash_attention``, which has a backward).
    """
    q = runtime.check_tensor(q, "q", dim=3)
    k_cache = runtime.check_tensor(k_cache, "k_cache", dim=4, contiguous=False)
    v_cache = runtime.check_tensor(v_cache, "v_cache", dim=4, contiguous=False)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k_cache, v_cache)):
        raise RuntimeError("decode_attention has no backward; call it under torch.no_grad() "
                           "or use flash_attention for training")
    k_cache = k_cache if k_cache.stride(-1) == 1 else k_cache.contiguous()
    v_cache = v_cache if v_cache.stride(-1) == 1 else v_cache.contiguous()
    bsz, n_heads, d = q.shape
    if k_cache.shape != v_cache.shape or k_cache.shape[0] != bsz or k_cache.shape[3] != d:
        raise ValueError(f"k_cache {tuple(k_cache.shape)} / v_cache {tuple(v_cache.shape)} "
                         f"must be (B, Hkv, T, D) matching q {tuple(q.shape)}")
    n_kv = k_cache.shape[1]
    if n_heads % n_kv:
        raise ValueError(f"query heads ({n_heads}) must be a multiple of kv heads ({n_kv})")
    if not MIN_HEAD_DIM <= d <= MAX_HEAD_DIM:
        raise ValueError(f"decode_attention supports head_dim {MIN_HEAD_DIM}..{MAX_HEAD_DIM}, "
                         f"got {d}")
    if q.dtype != k_cache.dtype or q.dtype != v_cache.dtype:
        raise TypeError(f"q and the cache must share one dtype, got {q.dtype}, "
                        f"{k_cache.dtype}, {v_cache.dtype}")
    if not 1 <= length <= k_cache.shape[2]:
        raise ValueError(f"length must be in [1, {k_cache.shape[2]}] (the cache size), "
                         f"got {length}")
    groups = n_heads // n_kv
    scale = 1.0 / math.sqrt(d) if sm_scale is None else float(sm_scale)
    out = runtime.new_output(q.shape, q.dtype, q.device)
    cfg = block_sizes.choose("decode_attention", q.dtype, d)
    runtime.count("decode_attention_fwd")
    _decode_kernel[(bsz * n_kv,)](
        q, k_cache, v_cache, out, scale, int(length),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        n_kv, groups, d, IEEE=q.dtype == torch.float32,
        BLOCK_G=max(16, triton.next_power_of_2(groups)), BLOCK_D=max(16, triton.next_power_of_2(d)),
        **cfg.blocks, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    return out


def reference(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
              length: int, sm_scale: float | None = None) -> torch.Tensor:
    """Plain PyTorch ``decode_attention``: q (B, H, D) against cache positions [0, length)
    of (B, Hkv, T, D), K/V repeated for GQA, the softmax in at least fp32; (B, H, D) in q's
    dtype. The test's check and the bench's baseline."""
    groups = q.shape[1] // k_cache.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    k = k_cache[:, :, :length].repeat_interleave(groups, 1)
    v = v_cache[:, :, :length].repeat_interleave(groups, 1)
    scores = (q[:, :, None] @ k.transpose(-1, -2)) * scale
    p = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    return (p.to(q.dtype) @ v)[:, :, 0]
