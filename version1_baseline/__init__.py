"""version1_baseline: the eager PyTorch TinyLLaMA that every other version is checked against."""
from .config import PRESETS, TinyLlamaConfig, get_preset
from .data import MarkovCorpus
from .generate import generate, sample_next, stream
from .kv_cache import KVCache, StaticKVCache
from .model import TinyLlama
from .train import Trainer, causal_lm_loss, train

VERSION_NAME = "v1"

__all__ = ["PRESETS", "TinyLlamaConfig", "get_preset", "MarkovCorpus", "generate",
           "sample_next", "stream", "KVCache", "StaticKVCache", "TinyLlama", "Trainer", "causal_lm_loss", "train",
           "VERSION_NAME", "VersionSpec", "SPEC"]

from .spec import VersionSpec  # noqa: E402

SPEC = VersionSpec(name=VERSION_NAME, model_cls=TinyLlama)
