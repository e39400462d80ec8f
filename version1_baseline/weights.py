"""Hugging Face Llama folders in and out: config.json + safetensors, nothing downloaded.

Every version loads weights through ``load_pretrained`` so that all of them read
the same files the same way.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import TinyLlamaConfig

_TIED_HEAD = "lm_head.weight"


def read_config(path) -> TinyLlamaConfig:
    """Read ``<path>/config.json`` into a TinyLlamaConfig (clear errors for what is missing)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected a local Hugging Face "
                                "Llama folder with config.json and model.safetensors")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file}: missing; a Hugging Face model folder needs config.json")
    with cfg_file.open() as f:
        return TinyLlamaConfig.from_hf_dict(json.load(f), source=str(cfg_file))


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` or a sharded ``model.safetensors.index.json``."""
    from safetensors.torch import load_file

    folder = Path(path)
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        with index.open() as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            shard_path = folder / shard
            if not shard_path.is_file():
                raise FileNotFoundError(f"{shard_path}: shard named in {index.name} is missing")
            state.update(load_file(str(shard_path)))
        return state
    raise FileNotFoundError(f"{folder}: no model.safetensors or model.safetensors.index.json; "
                            "expected Hugging Face safetensors weights")


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> dict:
    """Return ``state`` ready for ``load_state_dict(strict=True)``, or raise naming the problem.

    A tied head may be absent from the file (HF drops the duplicate); it is filled from
    the embedding. Missing keys, unexpected keys and shape mismatches all raise ValueError.
    """
    expected = model.to_hf_state_dict()
    state = dict(state)
    if _TIED_HEAD not in state and getattr(model.config, "tie_word_embeddings", False):
        state[_TIED_HEAD] = state.get("model.embed_tokens.weight")
    missing = sorted(k for k in expected if state.get(k) is None)
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        raise ValueError(f"{source}: state dict does not match the config: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ValueError(f"{source}: shape mismatch for {key}: file has "
                             f"{tuple(state[key].shape)}, config expects {tuple(ref.shape)}")
    return state


def load_pretrained(model_cls, path, device=None):
    """Build ``model_cls(config)`` from a local HF Llama folder and load its weights (fp32)."""
    model = model_cls.from_hf_state_dict(read_config(path), read_state_dict(path))
    return model.to(device) if device is not None else model


def save_pretrained(model, path) -> None:
    """Write ``config.json`` and ``model.safetensors`` that ``transformers`` can load."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.to_hf_state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop(_TIED_HEAD, None)  # safetensors refuses shared storage; HF drops it too
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with (folder / "config.json").open("w") as f:
        json.dump(model.config.to_hf_dict(), f, indent=2)
