"""TinyLLaMA configuration and the named presets every version shares.

The field names are ours (short, readable); ``to_hf_dict`` / ``from_hf_dict``
map them to and from a Hugging Face ``LlamaConfig`` ``config.json``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .errors import UnknownNameError, UserError


@dataclass(frozen=True)
class TinyLlamaConfig:
    """Shape of a Llama-architecture decoder.

    ``batch_size`` is not part of the architecture; it is the preset's default
    workload batch, used by the CLI and the benchmarks when none is given.
    """

    vocab_size: int = 1000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 8
    num_kv_heads: int = 4
    intermediate_size: int = 512
    max_seq_len: int = 128
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    batch_size: int = 4

    def __post_init__(self) -> None:
        """Refuse a shape the model cannot be built with (``UserError``, naming the field)."""
        positive = ("vocab_size", "hidden_size", "num_layers", "num_heads",
                    "num_kv_heads", "intermediate_size", "max_seq_len", "batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"TinyLlamaConfig.{name} must be a positive int, got {value!r}")
        for name in ("rope_theta", "rms_norm_eps"):
            value = getattr(self, name)
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or not math.isfinite(value) or value <= 0):
                raise UserError(f"TinyLlamaConfig.{name} must be a positive finite number, "
                                f"got {value!r}")
        if not isinstance(self.tie_word_embeddings, bool):
            raise UserError(f"TinyLlamaConfig.tie_word_embeddings must be a bool, "
                            f"got {self.tie_word_embeddings!r}")
        if self.hidden_size % self.num_heads:
            raise UserError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_heads % self.num_kv_heads:
            raise UserError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads}) for grouped-query attention")
        if self.head_dim % 2:
            raise UserError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_kv_groups(self) -> int:
        """How many query heads share one key/value head."""
        return self.num_heads // self.num_kv_heads

    def replace(self, **changes) -> "TinyLlamaConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def num_parameters(self) -> int:
        """Parameter count, with a tied head counted once."""
        h, i, v = self.hidden_size, self.intermediate_size, self.vocab_size
        kv = self.num_kv_heads * self.head_dim
        per_layer = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h
        head = 0 if self.tie_word_embeddings else v * h
        return v * h + self.num_layers * per_layer + h + head

    # ---- Hugging Face config.json mapping -------------------------------------------------
    def to_hf_dict(self) -> dict:
        """A ``config.json`` dict that ``transformers.LlamaConfig`` accepts."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_seq_len,
            "head_dim": self.head_dim,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
        }

    @classmethod
    def from_hf_dict(cls, hf: dict, source: str = "config.json") -> "TinyLlamaConfig":
        """Build a config from a Hugging Face Llama ``config.json`` dict.

        Raises ``ValueError`` naming the field for anything this model does not implement
        (another architecture, biases, rope scaling, a non-SiLU activation, odd head_dim).
        """
        arch = hf.get("architectures") or ["LlamaForCausalLM"]
        model_type = hf.get("model_type", "llama")
        if model_type != "llama" or "LlamaForCausalLM" not in arch:
            raise ValueError(
                f"{source}: unsupported architecture model_type={model_type!r} "
                f"architectures={arch!r}; expected model_type 'llama' / LlamaForCausalLM")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"{source}: hidden_act={hf['hidden_act']!r} unsupported; expected 'silu'")
        for flag in ("attention_bias", "mlp_bias"):
            if hf.get(flag, False):
                raise ValueError(f"{source}: {flag}=true unsupported; TinyLLaMA has no biases")
        # transformers reads RoPE from `rope_scaling` (legacy key) when present, else from
        # `rope_parameters`, so a file may carry scaling in either. Both are checked: any
        # scaling we do not implement is refused, whichever key holds it.
        for key in ("rope_scaling", "rope_parameters"):
            rope = hf.get(key)
            if rope is None:
                continue
            if not isinstance(rope, dict):
                raise ValueError(f"{source}: {key}={rope!r} unsupported; expected one dict "
                                 "with rope_type 'default'")
            rope_type = rope.get("rope_type", rope.get("type", "default"))
            if rope_type != "default":
                raise ValueError(f"{source}: {key} has rope_type={rope_type!r}, a RoPE scaling "
                                 "this model does not implement; expected 'default' (no scaling)")
        rope = hf.get("rope_scaling") or hf.get("rope_parameters") or {}
        rope_theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
        hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
        if hf.get("head_dim") not in (None, hidden // heads):
            raise ValueError(
                f"{source}: head_dim={hf['head_dim']} unsupported; expected hidden_size/num_heads "
                f"= {hidden // heads}")
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hidden,
            num_layers=hf["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=hf.get("num_key_value_heads") or heads,
            intermediate_size=hf["intermediate_size"],
            max_seq_len=hf.get("max_position_embeddings", 2048),
            rope_theta=float(rope_theta),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        )


PRESETS: dict[str, TinyLlamaConfig] = {
    # The 16x16 "tiny transformer" scale of accelerator studies: one array tile per GEMM.
    "chip16": TinyLlamaConfig(vocab_size=64, hidden_size=16, num_layers=1, num_heads=2,
                              num_kv_heads=1, intermediate_size=32, max_seq_len=16, batch_size=1),
    "tiny": TinyLlamaConfig(vocab_size=1000, hidden_size=256, num_layers=4, num_heads=8,
                            num_kv_heads=4, intermediate_size=512, max_seq_len=128, batch_size=4),
    "small": TinyLlamaConfig(vocab_size=1000, hidden_size=512, num_layers=8, num_heads=8,
                             num_kv_heads=4, intermediate_size=1408, max_seq_len=256, batch_size=8),
    "medium": TinyLlamaConfig(vocab_size=1000, hidden_size=1024, num_layers=12, num_heads=16,
                              num_kv_heads=8, intermediate_size=2816, max_seq_len=512,
                              batch_size=16),
    # The real TinyLlama-1.1B shape: the size at which a GPU measures kernels rather than
    # launch overhead. Batch 1 so that eager version 1 trains at 2048 tokens within 80 GB.
    "tinyllama-1.1b": TinyLlamaConfig(vocab_size=32000, hidden_size=2048, num_layers=22,
                                      num_heads=32, num_kv_heads=4, intermediate_size=5632,
                                      max_seq_len=2048, batch_size=1),
}


def get_preset(name: str) -> TinyLlamaConfig:
    """Return the named preset; raises ``UnknownNameError`` (a ``KeyError``) listing the names."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}"
                               ) from None


def require_config(config) -> TinyLlamaConfig:
    """``config`` itself if it is a ``TinyLlamaConfig``, else ``TypeError`` saying what to pass.

    Model constructors call this first, so a dict or a preset name fails here with a sentence
    rather than as an ``AttributeError`` deep inside the build.
    """
    if not isinstance(config, TinyLlamaConfig):
        hint = (f"; for a preset use get_preset({config!r})" if isinstance(config, str) else
                "; for a config.json dict use TinyLlamaConfig.from_hf_dict(...)"
                if isinstance(config, dict) else "")
        raise TypeError(f"expected a TinyLlamaConfig, got {type(config).__name__}{hint}")
    return config
