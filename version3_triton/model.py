"""Version 3: the version-1 model with its hot operations replaced by Triton kernels.

Only forwards change. The modules *are* version 1's (same parameters, names, init and
weight I/O): after version 1 builds the model, each ``RMSNorm`` / ``Attention`` / ``MLP`` /
``DecoderLayer`` has its class switched to the subclass below, whose forward calls:

* ``rms_norm`` for the first norm of a block and the final norm,
* ``add_rms_norm`` for "residual add + second norm" of a block (one pass over the stream),
* ``apply_rope`` on Q and K together, ``flash_attention`` for prefill and training,
  ``decode_attention`` for one new token against the KV cache,
* ``swiglu`` between the gate/up and down projections.

The projections stay ``nn.Linear`` (cuBLAS matmuls; a Triton matmul would not beat them).
``causal_lm_loss`` is the training loss through the fused cross-entropy kernel.
"""
from __future__ import annotations

import torch

from version1_baseline import model as v1

from . import runtime
from .kernels.cross_entropy import cross_entropy
from .kernels.decode_attention import decode_attention
from .kernels.flash_attention import MAX_HEAD_DIM, MIN_HEAD_DIM, flash_attention
from .kernels.rms_norm import add_rms_norm, rms_norm
from .kernels.rope import apply_rope
from .kernels.swiglu import swiglu

KERNELS = ("rms_norm", "add_rms_norm", "rope", "flash_attention", "decode_attention",
           "swiglu", "cross_entropy")


class RMSNorm(v1.RMSNorm):
    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Attention(v1.Attention):
    def forward(self, x, cos, sin, cache=None, layer_idx: int = 0):
        """x: (B, S, hidden); cos/sin: (S, head_dim) for the new positions."""
        bsz, seq, _ = x.shape
        # Token-major (B, S, heads, D) views of the projections: what the kernels take.
        q = self.q_proj(x).view(bsz, seq, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(bsz, seq, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(bsz, seq, self.num_kv_heads, self.head_dim)
        q, k = apply_rope(q, k, cos, sin)
        if cache is None:
            out = flash_attention(q, k, v, causal=True)
        else:
            k_all, v_all = cache.write(layer_idx, k.transpose(1, 2), v.transpose(1, 2))
            # The cache may hold another dtype than autocast's q (fp32 cache, bf16 q):
            # casting the one query is cheaper than casting the whole cache.
            q_c = q.to(k_all.dtype)
            if seq == 1:
                out = decode_attention(q_c.view(bsz, self.num_heads, self.head_dim),
                                       k_all, v_all, k_all.shape[2])
            else:
                out = flash_attention(q_c, k_all.transpose(1, 2), v_all.transpose(1, 2),
                                      causal=True)
            out = out.to(v.dtype)
        return self.o_proj(out.reshape(bsz, seq, self.num_heads * self.head_dim))


class MLP(v1.MLP):
    def forward(self, x):
        return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


class DecoderLayer(v1.DecoderLayer):
    def forward(self, x, cos, sin, cache=None, layer_idx: int = 0):
        """x: (B, S, hidden) -> (B, S, hidden)."""
        with torch.profiler.record_function("attention"):
            attn = self.self_attn(self.input_layernorm(x), cos, sin, cache, layer_idx)
        with torch.profiler.record_function("mlp"):
            norm = self.post_attention_layernorm
            normed, h = add_rms_norm(attn, x, norm.weight, norm.eps)
            return h + self.mlp(normed)


_REPLACEMENTS = {v1.RMSNorm: RMSNorm, v1.Attention: Attention, v1.MLP: MLP,
                 v1.DecoderLayer: DecoderLayer}


class TinyLlama(v1.TinyLlama):
    """Version 1's model and weights; Triton kernels in every block. Same forward signature:
    ``model(input_ids, cache=None) -> logits (B, S, vocab)``."""

    def __init__(self, config):
        if not MIN_HEAD_DIM <= config.head_dim <= MAX_HEAD_DIM:
            raise ValueError(f"version 3's attention kernels support head_dim "
                             f"{MIN_HEAD_DIM}..{MAX_HEAD_DIM}; this config has "
                             f"{config.head_dim} (hidden {config.hidden_size} / "
                             f"{config.num_heads} heads)")
        super().__init__(config)
        for module in self.modules():
            # Exact type match: swap version 1's classes only, never a subclass of them.
            replacement = _REPLACEMENTS.get(type(module))
            if replacement is not None:
                module.__class__ = replacement


def causal_lm_loss(model: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Version 1's next-token loss through the fused cross-entropy kernel.

    Plugs into ``Trainer(model, loss_fn=causal_lm_loss)``. Instead of slicing the logits
    (a copy of (B, S-1, V)), the labels are shifted and the last position is ignored.
    """
    if input_ids.shape[1] < 2:
        raise ValueError("training needs sequences of at least 2 tokens (one prediction)")
    logits = model(input_ids)
    labels = torch.full_like(input_ids, -100)
    labels[:, :-1] = input_ids[:, 1:]
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def describe(model: torch.nn.Module) -> dict:
    """Facts for the result JSON: run mode and per-kernel launch counts of this process."""
    return {"kernels": list(KERNELS), **runtime.describe()}
