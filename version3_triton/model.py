"""Version 3: version 2's model (fused QKV and gate/up projections) with its hot operations
replaced by Triton kernels.

What it keeps from version 2: the fused ``qkv_proj`` and ``gate_up_proj`` GEMMs (cuBLAS
matmuls; a Triton matmul would not beat them), the HF-layout weight remap, and the way a
rung replaces modules (version 2's ``TinyLlama`` builds the classes named on it). What it
replaces, each module a subclass of version 2's or version 1's with a new forward:

* ``rms_norm`` for the first norm of a block and the final norm,
* ``add_rms_norm`` for "residual add + second norm" of a block (one pass over the stream),
* ``apply_rope`` on Q and K together, ``flash_attention`` for prefill and training,
  ``decode_attention`` for one new token against the KV cache,
* ``swiglu`` between the gate/up and down projections.

``causal_lm_loss`` is the training loss through the fused cross-entropy kernel.
"""
from __future__ import annotations

import torch

from version1_baseline import model as v1
from version1_baseline.config import require_config
from version1_baseline.errors import UserError
from version2_fused import model as v2
from version2_fused.fusions import FusionConfig

from . import runtime
from .kernels.cross_entropy import cross_entropy
from .kernels.decode_attention import decode_attention
from .kernels.flash_attention import MAX_HEAD_DIM, MIN_HEAD_DIM, flash_attention
from .kernels.rms_norm import add_rms_norm, rms_norm
from .kernels.rope import apply_rope
from .kernels.swiglu import swiglu

KERNELS = ("rms_norm", "add_rms_norm", "rope", "flash_attention", "decode_attention",
           "swiglu", "cross_entropy")

# Version 2's switches that version 3 keeps: the fused projections, and norm modules that
# are replaced (here by the Triton kernel). Attention and RoPE are version 3's own kernels,
# so v2's SDPA and joint-RoPE switches are off rather than claimed.
FUSIONS = FusionConfig(fused_qkv=True, fused_gate_up=True, sdpa=False, fused_rms_norm=True,
                       rope_qk_together=False)


class RMSNorm(v2.FusedRMSNorm):
    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Attention(v2.Attention):
    def forward(self, x, cos, sin, cache=None, layer_idx: int = 0):
        """x: (B, S, hidden); cos/sin: (S, head_dim) for the new positions."""
        bsz, seq, _ = x.shape
        hq, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        # Token-major (B, S, heads, D) views of the one fused projection: what the kernels
        # take (apply_rope copies its strided inputs, flash attention reads strides).
        q, k, v = self.qkv_proj(x).view(bsz, seq, hq + 2 * hkv, d).split([hq, hkv, hkv], dim=2)
        q, k = apply_rope(q, k, cos, sin)
        if cache is None:
            out = flash_attention(q, k, v, causal=True)
        else:
            end = cache.length + seq   # before write: a StaticKVCache returns whole buffers
            k_all, v_all = cache.write(layer_idx, k.transpose(1, 2), v.transpose(1, 2))
            # The cache may hold another dtype than autocast's q (fp32 cache, bf16 q):
            # casting the one query is cheaper than casting the whole cache.
            q_c = q.to(k_all.dtype)
            if seq == 1:
                out = decode_attention(q_c.reshape(bsz, hq, d), k_all, v_all, end)
            else:
                out = flash_attention(q_c, k_all[:, :, :end].transpose(1, 2),
                                      v_all[:, :, :end].transpose(1, 2), causal=True)
            out = out.to(v.dtype)
        return self.o_proj(out.reshape(bsz, seq, hq * d))


class MLP(v2.FusedMLP):
    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(swiglu(gate, up))


class DecoderLayer(v1.DecoderLayer):
    def forward(self, x, cos, sin, cache=None, layer_idx: int = 0):
        """x: (B, S, hidden) -> (B, S, hidden)."""
        with torch.profiler.record_function("attention"):
            attn = self.self_attn(self.input_layernorm(x), cos, sin, cache, layer_idx)
        with torch.profiler.record_function("mlp"):
            norm = self.post_attention_layernorm
            normed, h = add_rms_norm(attn, x, norm.weight, norm.eps)
            return h + self.mlp(normed)


class TinyLlama(v2.TinyLlama):
    """Version 2's model, weights and fused projections; Triton kernels in every block.
    Same forward signature: ``model(input_ids, cache=None) -> logits (B, S, vocab)``."""

    layer_cls, attention_cls, mlp_cls, norm_cls = DecoderLayer, Attention, MLP, RMSNorm

    def __init__(self, config):
        if not MIN_HEAD_DIM <= require_config(config).head_dim <= MAX_HEAD_DIM:
            raise UserError(f"version 3's attention kernels support head_dim "
                            f"{MIN_HEAD_DIM}..{MAX_HEAD_DIM}; this config has "
                            f"{config.head_dim} (hidden {config.hidden_size} / "
                            f"{config.num_heads} heads)")
        super().__init__(config, FUSIONS)


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
