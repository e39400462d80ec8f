"""Version 2: version 1's TinyLLaMA with PyTorch-level fusions swapped in.

The model *is* version 1 (same config, same forward loop, same decoder layer, same KV
cache, same input checks, same Hugging Face weight files); only the modules that a
fusion replaces differ. Fused parameters (``qkv_proj``, ``gate_up_proj``) exist only in
memory: weights go in and out in the HF Llama layout.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from version1_baseline import model as v1
from version1_baseline.config import TinyLlamaConfig
from version1_baseline.weights import check_state_dict, read_checkpoint

from .attention import Attention
from .fusions import FusionConfig


class FusedRMSNorm(v1.RMSNorm):
    """Version 1's RMSNorm through ``F.rms_norm`` (one op; a fused kernel where torch has one).

    x: (..., hidden) -> same shape. Same ``weight`` parameter as version 1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class FusedMLP(nn.Module):
    """SwiGLU with gate and up as one GEMM: ``gate_up_proj`` rows = gate rows, then up rows."""

    def __init__(self, config: TinyLlamaConfig):
        super().__init__()
        h, i = config.hidden_size, config.intermediate_size
        self.gate_up_proj = nn.Linear(h, 2 * i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, S, hidden) -> (B, S, hidden)."""
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


# ---- HF layout <-> fused layout ----------------------------------------------------------
_QKV = ("q_proj", "k_proj", "v_proj")
_GATE_UP = ("gate_proj", "up_proj")


def fuse_state_dict(state: dict, config: TinyLlamaConfig, fusions: FusionConfig) -> dict:
    """HF-layout state dict -> this model's layout: ``qkv_proj = cat(q, k, v)`` and
    ``gate_up_proj = cat(gate, up)`` along the output rows, per layer, where fused."""
    state = dict(state)
    for i in range(config.num_layers):
        for fused, block, parts, name in (
                (fusions.fused_qkv, "self_attn", _QKV, "qkv_proj"),
                (fusions.fused_gate_up, "mlp", _GATE_UP, "gate_up_proj")):
            if fused:
                prefix = f"model.layers.{i}.{block}."
                rows = [state.pop(f"{prefix}{p}.weight") for p in parts]
                state[f"{prefix}{name}.weight"] = torch.cat(rows, dim=0)
    return state


def unfuse_state_dict(state: dict, config: TinyLlamaConfig, fusions: FusionConfig) -> dict:
    """Inverse of ``fuse_state_dict``. Split weights are cloned so that no two tensors
    share storage (safetensors refuses to save shared tensors)."""
    state = dict(state)
    q_rows = config.num_heads * config.head_dim
    kv_rows = config.num_kv_heads * config.head_dim
    for i in range(config.num_layers):
        for fused, block, parts, name, sizes in (
                (fusions.fused_qkv, "self_attn", _QKV, "qkv_proj", [q_rows, kv_rows, kv_rows]),
                (fusions.fused_gate_up, "mlp", _GATE_UP, "gate_up_proj",
                 [config.intermediate_size] * 2)):
            if fused:
                prefix = f"model.layers.{i}.{block}."
                rows = state.pop(f"{prefix}{name}.weight").split(sizes, dim=0)
                state.update({f"{prefix}{p}.weight": r.clone() for p, r in zip(parts, rows)})
    return state


class TinyLlama(v1.TinyLlama):
    """Version 1's model with the fusions of ``fusions`` (default: all, no compile).

    ``model(input_ids, cache=None) -> logits (B, S, vocab)``, exactly as version 1.
    A fresh ``TinyLlama(config)`` holds the weights version 1 would draw under the same
    seed: it is built as version 1, then its weights are moved into the fused modules.
    """

    # The ladder's one replacement idiom: module instances are replaced, and the classes put
    # in are named here. A rung above (version 3, then 4) subclasses these modules and names
    # its own classes; building, the fused-weight remap and weight loading stay in this file.
    layer_cls: type = v1.DecoderLayer      # (config): each decoder layer
    attention_cls: type = Attention        # (config, fusions): every layer's self_attn
    mlp_cls: type = FusedMLP               # (config): every layer's mlp, when fused_gate_up
    norm_cls: type = FusedRMSNorm          # (hidden, eps): every norm, when fused_rms_norm

    def __init__(self, config: TinyLlamaConfig, fusions: FusionConfig | None = None):
        super().__init__(config)
        self.fusions = fusions if fusions is not None else FusionConfig()
        self.fusions.check_supported()
        reference = {k: v.clone() for k, v in self.state_dict().items()}
        # The new modules' own random init is overwritten below; fork_rng keeps it from
        # moving the global RNG, so every rung leaves the generator as version 1 does.
        with torch.random.fork_rng(devices=[]):
            for i, layer in enumerate(self.model.layers):
                if type(layer) is not self.layer_cls:
                    layer = self.model.layers[i] = self.layer_cls(config)
                layer.self_attn = self.attention_cls(config, self.fusions)
                if self.fusions.fused_gate_up:
                    layer.mlp = self.mlp_cls(config)
                if self.fusions.fused_rms_norm:
                    layer.input_layernorm = self.norm_cls(config.hidden_size,
                                                          config.rms_norm_eps)
                    layer.post_attention_layernorm = self.norm_cls(config.hidden_size,
                                                                   config.rms_norm_eps)
            if self.fusions.fused_rms_norm:
                self.model.norm = self.norm_cls(config.hidden_size, config.rms_norm_eps)
        self.load_hf_state_dict(reference)

    # ---- weights, always in the HF Llama layout ------------------------------------------
    @classmethod
    def from_hf_state_dict(cls, config: TinyLlamaConfig, state: dict,
                           fusions: FusionConfig | None = None) -> "TinyLlama":
        """A model of ``config`` holding a HF-layout (= version 1) state dict. ``fusions``:
        version 2's switches (a rung above fixes its own and takes none)."""
        model = cls(config) if fusions is None else cls(config, fusions)
        model.load_hf_state_dict(state)
        return model

    def load_hf_state_dict(self, state: dict) -> None:
        """Check a HF-layout state dict (keys, shapes; clear errors), fuse it, load it."""
        state = check_state_dict(self, state, source="state dict")
        state = {k: v.float() for k, v in state.items()}
        self.load_state_dict(fuse_state_dict(state, self.config, self.fusions), strict=True)

    def to_hf_state_dict(self) -> dict:
        """This model's weights split back into the HF layout (version 1's own keys)."""
        return unfuse_state_dict(self.state_dict(), self.config, self.fusions)

    @classmethod
    def from_pretrained(cls, path, device=None, fusions: FusionConfig | None = None):
        """Load a local Hugging Face Llama folder into a version-2 model. Never downloads."""
        model = cls.from_hf_state_dict(*read_checkpoint(path), fusions)
        return model.to(device) if device is not None else model
