"""Grouped-query attention with three independent switches: fused QKV, RoPE on Q and K
together, and ``F.scaled_dot_product_attention``.

Same signature and parameter names (when unfused) as version 1's ``Attention``, so it
drops into version 1's ``DecoderLayer`` unchanged.
"""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.kv_cache import KVCache, query_positions
from version1_baseline.model import apply_rotary, eager_attention

from . import fusions as fusion_support
from .fusions import FusionConfig


def expand_kv_heads(kv: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, kv_heads, T, D) -> (B, kv_heads * groups, T, D), head h reading kv head h // groups.

    For torches without SDPA's ``enable_gqa``. A view (no copy) when groups == 1 or
    kv_heads == 1 (a stride-0 head dimension); otherwise the reshape has to copy, because
    no single stride walks "kv0, kv0, kv1, kv1", which is why native GQA is preferred.
    """
    if groups == 1:
        return kv
    bsz, kv_heads, seq, dim = kv.shape
    if kv_heads == 1:
        return kv.expand(bsz, groups, seq, dim)
    return kv[:, :, None].expand(bsz, kv_heads, groups, seq, dim).reshape(
        bsz, kv_heads * groups, seq, dim)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past) -> torch.Tensor:
    """Causal GQA through ``F.scaled_dot_product_attention``; shapes as ``eager_attention``.

    SDPA's ``is_causal=True`` masks with the diagonal at the top-left corner
    (query i sees keys 0..i), which is right only when there are no cached keys. With
    ``past`` cached positions query i sits at absolute position past + i:
      - past == 0: ``is_causal=True`` (lets the fused kernels skip masked blocks);
      - one new query: it may see every key, so no mask at all;
      - several new queries after a cache: an explicit boolean mask, True = may attend;
      - ``past`` a static cache's position tensor: k/v are the whole cache buffers, so an
        explicit mask always (it also hides the positions not yet written).
    """
    seq, total = q.shape[2], k.shape[2]
    mask, causal = None, False
    if isinstance(past, torch.Tensor) or (past > 0 and seq > 1):
        q_pos = query_positions(past, seq, q.device)[:, None]
        mask = torch.arange(total, device=q.device)[None, :] <= q_pos
    elif past == 0:
        causal = seq > 1
    groups = q.shape[1] // k.shape[1]
    if groups == 1:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    if fusion_support.HAS_NATIVE_GQA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                              enable_gqa=True)
    return F.scaled_dot_product_attention(q, expand_kv_heads(k, groups),
                                          expand_kv_heads(v, groups),
                                          attn_mask=mask, is_causal=causal)


class Attention(nn.Module):
    """Causal grouped-query self-attention, fused as ``fusions`` says.

    Parameters: ``qkv_proj`` (rows: Q heads, then K heads, then V heads) when
    ``fused_qkv``, else ``q_proj``/``k_proj``/``v_proj`` as in version 1; always ``o_proj``.
    """

    def __init__(self, config: TinyLlamaConfig, fusions: FusionConfig):
        super().__init__()
        h, d = config.hidden_size, config.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, d
        self.fused_qkv = fusions.fused_qkv
        self.rope_qk_together = fusions.rope_qk_together
        self.core = sdpa_attention if fusions.sdpa else eager_attention
        if self.fused_qkv:
            self.qkv_proj = nn.Linear(h, (config.num_heads + 2 * config.num_kv_heads) * d,
                                      bias=False)
        else:
            self.q_proj = nn.Linear(h, config.num_heads * d, bias=False)
            self.k_proj = nn.Linear(h, config.num_kv_heads * d, bias=False)
            self.v_proj = nn.Linear(h, config.num_kv_heads * d, bias=False)
        self.o_proj = nn.Linear(config.num_heads * d, h, bias=False)

    def _project(self, x: torch.Tensor):
        """x: (B, S, hidden) -> q (B, H, S, D), k and v (B, KV, S, D), and the joint
        (B, H + KV, S, D) view of q and k when one exists without a copy (else None)."""
        bsz, seq, _ = x.shape
        heads, kv, d = self.num_heads, self.num_kv_heads, self.head_dim
        if self.fused_qkv:
            qkv = self.qkv_proj(x).view(bsz, seq, heads + 2 * kv, d).transpose(1, 2)
            q, k, v = qkv.split([heads, kv, kv], dim=1)
            return q, k, v, qkv[:, :heads + kv]
        q = self.q_proj(x).view(bsz, seq, heads, d).transpose(1, 2)
        k = self.k_proj(x).view(bsz, seq, kv, d).transpose(1, 2)
        v = self.v_proj(x).view(bsz, seq, kv, d).transpose(1, 2)
        return q, k, v, None

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer_idx: int = 0):
        """x: (B, S, hidden); cos/sin: (S, head_dim) fp32 for the new positions.
        Returns (B, S, hidden) in x's (compute) dtype."""
        bsz, seq, _ = x.shape
        q, k, v, qk = self._project(x)
        if self.rope_qk_together:
            # One rotation over H + KV heads instead of two launches of the same ops.
            # Without fused QKV the joint tensor costs a cat, which the ablation shows.
            qk = torch.cat((q, k), dim=1) if qk is None else qk
            q, k = apply_rotary(qk, cos, sin).split([self.num_heads, self.num_kv_heads], dim=1)
        else:
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

        past = 0
        if cache is not None:
            past = cache.start
            k, v = cache.write(layer_idx, k, v)
        out = self.core(q, k, v, past)
        return self.o_proj(out.transpose(1, 2).reshape(bsz, seq, self.num_heads * self.head_dim))
