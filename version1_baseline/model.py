"""Eager TinyLLaMA: the reference every other version is checked against.

Written to be read, not to be fast. Module names and parameter names follow
``transformers.LlamaForCausalLM`` so that state dicts are interchangeable.
Attention is spelled out (explicit mask, explicit softmax) on purpose: it is the
thing the later versions replace.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TinyLlamaConfig, require_config
from .kv_cache import KVCache, StaticKVCache, query_positions
from .validation import check_input_ids


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight``, computed in fp32 and cast back."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotate-half RoPE (the Llama / Hugging Face convention)."""

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        # Not persistent: it is derived from the config and HF does not save it either.
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor):
        """positions: (S,) int64 -> cos, sin: (S, head_dim) fp32."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, heads, S, D); cos/sin: (S, D). Returns x rotated, in x's dtype."""
    return (x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype))


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past) -> torch.Tensor:
    """Causal GQA attention spelled out: repeat K/V, scores, explicit mask, softmax.

    q: (B, heads, S, D) for absolute positions ``[past, past+S)``; k, v: (B, kv_heads, T, D)
    for positions ``[0, T)``, T >= past+S (a static cache passes its whole buffers: the mask
    hides the positions not yet written). ``past``: an int, or a static cache's 0-d position
    tensor. Returns (B, heads, S, D) in q's dtype; the softmax runs in fp32.
    """
    # GQA: each key/value head serves heads // kv_heads query heads.
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)
    v = v.repeat_interleave(groups, dim=1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    seq, total = q.shape[2], k.shape[2]
    # Query i (absolute position past+i) may see keys at positions <= past+i.
    q_pos = query_positions(past, seq, q.device)[:, None]
    k_pos = torch.arange(total, device=q.device)[None, :]
    scores = scores.masked_fill(k_pos > q_pos, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return probs @ v


class Attention(nn.Module):
    """Causal grouped-query self-attention with an explicit mask and softmax."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        h, d = config.hidden_size, config.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, d
        self.q_proj = nn.Linear(h, config.num_heads * d, bias=False)
        self.k_proj = nn.Linear(h, config.num_kv_heads * d, bias=False)
        self.v_proj = nn.Linear(h, config.num_kv_heads * d, bias=False)
        self.o_proj = nn.Linear(config.num_heads * d, h, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer_idx: int = 0):
        """x: (B, S, hidden); cos/sin: (S, head_dim) for the new positions."""
        bsz, seq, _ = x.shape
        q = self.q_proj(x).view(bsz, seq, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

        past = 0
        if cache is not None:
            past = cache.start
            k, v = cache.write(layer_idx, k, v)
        out = eager_attention(q, k, v, past)
        out = out.transpose(1, 2).reshape(bsz, seq, self.num_heads * self.head_dim)
        return self.o_proj(out)


class MLP(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        h, i = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer_idx: int = 0):
        """x: (B, S, hidden) -> (B, S, hidden)."""
        # record_function ranges name the blocks in profiler traces; near-free when not profiling.
        with torch.profiler.record_function("attention"):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer_idx)
        with torch.profiler.record_function("mlp"):
            x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaBody(nn.Module):
    """Embedding, decoder layers and final norm (``model.*`` in the HF state dict)."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta)


class TinyLlama(nn.Module):
    """The eager reference model. ``model(input_ids) -> logits (B, S, vocab)``."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        self.config = require_config(config)
        self.model = LlamaBody(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # The HF Llama initializer (normal, std 0.02), so fresh models match in scale.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # Whether new_cache makes a StaticKVCache by default: set by whoever compiles the model
    # (the compile peer, version 2's --compile) so that decode compiles one graph.
    static_kv_cache = False

    def new_cache(self, batch_size: int, device=None, dtype=None,
                  static: bool | None = None) -> KVCache:
        """An empty KV cache sized for this model.

        ``static``: a ``StaticKVCache`` (position as a tensor, whole buffers read: one
        ``torch.compile`` graph for every position) rather than a ``KVCache`` (position as
        an int, only the filled prefix read: cheapest eagerly); None: ``static_kv_cache``.

        Defaults: the model's device; the dtype the keys are computed in, that is the
        autocast dtype when this is called under ``torch.autocast`` for that device (the
        projections then produce bf16/fp16 keys, and attention reads the cache on tensor
        cores), else the weights' dtype.
        """
        ref = self.lm_head.weight
        device = torch.device(device) if device is not None else ref.device
        if dtype is None:
            autocast = torch.is_autocast_enabled(device.type)
            dtype = torch.get_autocast_dtype(device.type) if autocast else ref.dtype
        static = self.static_kv_cache if static is None else static
        return (StaticKVCache if static else KVCache)(self.config, batch_size, device, dtype)

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """input_ids: (B, S) int64/int32 -> logits (B, S, vocab) in the compute dtype.

        With ``cache``, the tokens are placed after the ``cache.length`` cached positions,
        their keys/values are appended, and the cache is advanced by S.
        """
        # Not ``past = check_input_ids(...)``: an int returned from eager code into a traced
        # graph is guarded, which would make a static cache's graph one per position.
        check_input_ids(input_ids, self.config, cache)
        seq = input_ids.shape[1]
        past = 0 if cache is None else cache.start
        cos, sin = self.model.rotary_emb(query_positions(past, seq, input_ids.device))
        x = self.model.embed_tokens(input_ids)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, cache, i)
        # Only the final norm: each layer's two norms sit inside its attention/mlp ranges.
        with torch.profiler.record_function("final_norm"):
            x = self.model.norm(x)
        if cache is not None:
            cache.advance(seq)
        return self.lm_head(x)

    # ---- weights: every version implements these three, in the HF Llama layout ----------
    @classmethod
    def from_hf_state_dict(cls, config: TinyLlamaConfig, state: dict) -> "TinyLlama":
        """A model of ``config`` holding the weights of a HF-layout (= version 1) state dict."""
        model = cls(config)
        model.load_hf_state_dict(state)
        return model

    def load_hf_state_dict(self, state: dict) -> None:
        """Load a HF-layout state dict (shapes and keys checked, clear errors)."""
        from .weights import check_state_dict
        state = check_state_dict(self, state, source="state dict")
        self.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)

    def to_hf_state_dict(self) -> dict:
        """This model's weights in the HF layout (version 1's own layout)."""
        return self.state_dict()

    @classmethod
    def from_pretrained(cls, path, device=None):
        """Load a local Hugging Face Llama folder (config.json + *.safetensors). Never downloads."""
        from .weights import load_pretrained
        return load_pretrained(cls, path, device=device)

    def save_pretrained(self, path) -> None:
        """Write config.json + model.safetensors in the Hugging Face Llama layout."""
        from .weights import save_pretrained
        save_pretrained(self, path)
