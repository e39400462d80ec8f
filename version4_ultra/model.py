"""Version 4: version 3's model with each transformer block as five fused kernels, and each
decode step as one kernel per layer.

Parameters, names and weight I/O are version 2's (fused ``qkv_proj`` and ``gate_up_proj``,
loaded from HF Llama state dicts by version 2's remap); the submodules are version 3's
(``RMSNorm``, ``Attention``, ``MLP``: the final norm and the fallback path use them). Only
``DecoderLayer.forward`` changes. Training and prefill (any batch, any length)::

    qkv = norm_qkv_rope(x)                  RMSNorm prologue, QKV GEMM, RoPE epilogue   1
    att = flash_attention(q, k, v)          version 3's kernel, reused                   1
    h   = linear_residual(att, Wo, x)       O projection, residual add epilogue          1
    act = norm_gate_up_swiglu(h)            RMSNorm prologue, gate/up GEMM, SwiGLU       1
    out = linear_residual(act, Wd, h)       down projection, residual add epilogue       1

Five launches per layer forward (plus the KV-cache append, two copies, when prefilling into a
cache). Decode (one new token, batch 1..16, no autograd): ``decode_layer``, one persistent
launch per layer on a GPU, five staged launches in the interpreter. Under autocast it
reads bf16/fp16 copies of the projection weights (made once, refreshed when a weight
changes) and the cache in the compute dtype: half the bytes of the fp32 masters, on tensor
cores. Anything the decode kernel does not support (batch > 16) takes version 3's layer,
after a one-time warning, and ``describe()`` lists every such fallback.

Why flash attention is reused rather than fused further: its input (Q, K, V of every head)
is produced by the QKV GEMM across all heads and its output feeds the O projection across
all heads, so fusing it into either GEMM would mean one program per (rows, all heads): no
launch saved that is not paid back in lost parallelism. The final RMSNorm is version 3's
kernel (the LM head is a cuBLAS GEMM, as in version 3) and the loss is version 3's fused
cross-entropy.
"""
from __future__ import annotations

import collections
import warnings

import torch

from version3_triton import model as v3
from version3_triton import runtime
from version3_triton.kernels.flash_attention import flash_attention

from .kernels.compute_dtype import autocast_dtype
from .kernels.decode_layer import (NORM_WEIGHTS, check_barrier_status, decode_layer,
                                   new_barrier_status, unsupported_reason)
from .kernels.linear_residual import linear_residual
from .kernels.norm_gate_up_swiglu import norm_gate_up_swiglu
from .kernels.norm_qkv_rope import norm_qkv_rope

KERNELS = ("norm_qkv_rope", "flash_attention (v3)", "o_proj_residual", "norm_gate_up_swiglu",
           "down_residual", "decode_layer", "rms_norm (v3, final norm)",
           "cross_entropy (v3)")

_warned: set = set()
# Decode calls that took version 3's layer instead of the decode kernel, per reason:
# reported by describe(), so a result never hides that the kernel did not run.
FALLBACKS: collections.Counter = collections.Counter()


def _warn_once(reason: str) -> None:
    FALLBACKS[reason] += 1
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"version 4 decode kernel not used ({reason}); falling back to version "
                      "3's layer for such inputs", RuntimeWarning, stacklevel=3)


class DecoderLayer(v3.DecoderLayer):
    def forward(self, x, cos, sin, cache=None, layer_idx: int = 0):
        """x: (B, S, hidden) -> (B, S, hidden)."""
        if cache is not None and x.shape[1] == 1 and not torch.is_grad_enabled():
            weights = self._decode_weights(autocast_dtype(x.device.type))
            k_cache, v_cache, pos = cache.layer_storage(layer_idx)
            reason = unsupported_reason(x, weights, k_cache, pos)
            if reason is None:
                return decode_layer(x, weights, k_cache, v_cache, pos, cos, sin,
                                    self.input_layernorm.eps,
                                    persistent=getattr(self, "persistent_decode", None),
                                    barrier_status=getattr(self, "barrier_status", None))
            _warn_once(reason)
            return super().forward(x, cos, sin, cache, layer_idx)
        return self._fused_forward(x, cos, sin, cache, layer_idx)

    def _projection_weights(self):
        """(Wq, Wk, Wv, Wgate, Wup): row blocks of the fused weights, views (no copies)."""
        a = self.self_attn
        q_rows, kv_rows = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
        wq, wk, wv = a.qkv_proj.weight.split([q_rows, kv_rows, kv_rows])
        w_gate, w_up = self.mlp.gate_up_proj.weight.chunk(2)
        return wq, wk, wv, w_gate, w_up

    def _decode_weights(self, compute_dtype: torch.dtype | None = None):
        """The decode kernel's 9 weights; the 7 projection matrices in ``compute_dtype``
        (None: as stored). The two norm gains stay as stored (the kernel reads them as fp32).

        A cast copy is made once and reused while every source weight is the same storage
        at the same version (``data_ptr`` and ``_version``: an optimizer step or a
        ``load_state_dict`` bumps the version, ``.to()`` changes the storage), so decode
        under autocast streams bf16 weights, not the fp32 masters, without a cast per step.
        """
        wq, wk, wv, w_gate, w_up = self._projection_weights()
        weights = (self.input_layernorm.weight, wq, wk, wv, self.self_attn.o_proj.weight,
                   self.post_attention_layernorm.weight, w_gate, w_up,
                   self.mlp.down_proj.weight)
        if compute_dtype is None or all(w.dtype == compute_dtype for w in weights):
            return weights
        key = (compute_dtype, tuple((w.data_ptr(), w._version) for w in weights))
        cached = getattr(self, "_decode_weight_copies", None)
        if cached is None or cached[0] != key:
            copies = tuple(w if i in NORM_WEIGHTS else w.detach().to(compute_dtype)
                           for i, w in enumerate(weights))
            cached = self._decode_weight_copies = (key, copies)
        return cached[1]

    def _fused_forward(self, x, cos, sin, cache, layer_idx):
        attn, mlp = self.self_attn, self.mlp
        bsz, seq, _ = x.shape
        hq, hkv, d = attn.num_heads, attn.num_kv_heads, attn.head_dim
        cdt = autocast_dtype(x.device.type)  # None: the weights' dtype
        wq, wk, wv, w_gate, w_up = self._projection_weights()
        with torch.profiler.record_function("attention"):
            norm = self.input_layernorm
            qkv = norm_qkv_rope(x, norm.weight, wq, wk, wv, cos, sin, norm.eps,
                                compute_dtype=cdt)
            # Strided views of the one buffer: flash attention reads them in place.
            q, k, v = qkv[:, :, :hq], qkv[:, :, hq:hq + hkv], qkv[:, :, hq + hkv:]
            if cache is None:
                out = flash_attention(q, k, v, causal=True)
            else:
                end = cache.length + seq   # before write: a StaticKVCache returns whole buffers
                k_all, v_all = cache.write(layer_idx, k.transpose(1, 2), v.transpose(1, 2))
                out = flash_attention(q.to(k_all.dtype), k_all[:, :, :end].transpose(1, 2),
                                      v_all[:, :, :end].transpose(1, 2), causal=True).to(q.dtype)
            h = linear_residual(out.reshape(bsz, seq, hq * d), attn.o_proj.weight, x,
                                name="o_proj_residual", compute_dtype=cdt)
        with torch.profiler.record_function("mlp"):
            norm = self.post_attention_layernorm
            act = norm_gate_up_swiglu(h, norm.weight, w_gate, w_up, norm.eps, compute_dtype=cdt)
            return linear_residual(act, mlp.down_proj.weight, h, name="down_residual",
                                   compute_dtype=cdt)


class TinyLlama(v3.TinyLlama):
    """Version 3's model and weights, version 4's fused layers.
    Same forward signature: ``model(input_ids, cache=None) -> logits (B, S, vocab)``.

    ``persistent_decode``: None (default) uses the one-launch decode kernel where every
    program can be resident (a GPU), True demands it, False forces the staged launches.
    """

    layer_cls = DecoderLayer

    def __init__(self, config, persistent_decode: bool | None = None):
        super().__init__(config)
        self.set_persistent_decode(persistent_decode)

    def forward(self, input_ids: torch.Tensor, cache=None) -> torch.Tensor:
        """Version 1's forward. A decode step's persistent launches report grid-barrier
        timeouts into one flag, checked once after the step (one host sync per token, where
        sampling syncs anyway) rather than after every layer."""
        if cache is None or input_ids.shape[1] != 1 or torch.is_grad_enabled():
            return super().forward(input_ids, cache)
        status = new_barrier_status(input_ids.device)
        for layer in self.model.layers:
            layer.barrier_status = status
        try:
            logits = super().forward(input_ids, cache)
        finally:
            for layer in self.model.layers:
                layer.barrier_status = None
        if runtime.CALLS["decode_layer"]:  # a persistent launch ran in this process
            check_barrier_status(status)
        return logits

    def set_persistent_decode(self, value: bool | None) -> None:
        if value not in (None, True, False):
            raise ValueError(f"persistent_decode must be None, True or False, got {value!r}")
        for layer in self.model.layers:
            layer.persistent_decode = value


causal_lm_loss = v3.causal_lm_loss  # version 3's fused cross-entropy: nothing to add


def describe(model: torch.nn.Module) -> dict:
    """Facts for the result JSON: kernels, run mode, per-kernel launch counts and configs,
    and every decode step that fell back to version 3's layer (reason -> layer calls)."""
    return {"kernels": list(KERNELS), **runtime.describe(),
            "decode_fallbacks": dict(FALLBACKS)}
