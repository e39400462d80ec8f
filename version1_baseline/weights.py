"""Hugging Face Llama folders in and out: config.json + safetensors, nothing downloaded.

Every version loads weights through ``load_pretrained`` so that all of them read
the same files the same way.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .config import TinyLlamaConfig

_TIED_HEAD = "lm_head.weight"
_EMBEDDING = "model.embed_tokens.weight"


def _head_differs(state: dict) -> bool:
    """True when the file holds an ``lm_head.weight`` that is not the embedding."""
    head, embedding = state.get(_TIED_HEAD), state.get(_EMBEDDING)
    return (head is not None and embedding is not None
            and (head.shape != embedding.shape or not torch.equal(head, embedding)))


def read_config(path) -> TinyLlamaConfig:
    """Read ``<path>/config.json`` into a TinyLlamaConfig (clear errors for what is missing)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected a local Hugging Face "
                                "Llama folder with config.json and model.safetensors")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file}: missing; a Hugging Face model folder needs config.json")
    return TinyLlamaConfig.from_hf_dict(_read_json(cfg_file), source=str(cfg_file))


def _read_json(file: Path) -> dict:
    """Parse a JSON object, naming the file (and line/column) when it is not one."""
    try:
        with file.open() as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err}); expected a Hugging Face "
                         f"{file.name}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{file}: holds a JSON {type(data).__name__}; expected a JSON object")
    return data


def _load_safetensors(file: Path, what: str) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file`` whose errors name the file (a truncated download
    otherwise reads only 'Error while deserializing header')."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(file))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{file}: cannot read {what} ({err}); the file is truncated or not "
                         "a safetensors file - download or save it again") from err


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` or a sharded ``model.safetensors.index.json``."""
    folder = Path(path)
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return _load_safetensors(single, "the weights")
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: no 'weight_map' object; expected a safetensors shard index")
        shards = sorted(set(weight_map.values()))
        state: dict[str, torch.Tensor] = {}
        for number, shard in enumerate(shards, 1):
            shard_path = folder / shard
            if not shard_path.is_file():
                raise FileNotFoundError(f"{shard_path}: shard named in {index.name} is missing")
            state.update(_load_safetensors(shard_path, f"shard {number} of {len(shards)} "
                                                       f"listed in {index.name}"))
        return state
    raise FileNotFoundError(f"{folder}: no model.safetensors or model.safetensors.index.json; "
                            "expected Hugging Face safetensors weights")


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> dict:
    """Return ``state`` ready for ``load_state_dict(strict=True)``, or raise naming the problem.

    A tied head may be absent from the file (HF drops the duplicate); it is filled from
    the embedding. A tied model cannot hold a head that differs from the embedding
    (loading both into one tensor would silently keep whichever came last): that raises,
    as do missing keys, unexpected keys and shape mismatches (all ValueError).
    ``read_checkpoint`` unties such a checkpoint the way ``transformers`` does instead.
    """
    expected = model.to_hf_state_dict()
    state = dict(state)
    if getattr(model.config, "tie_word_embeddings", False):
        if _TIED_HEAD not in state:
            state[_TIED_HEAD] = state.get(_EMBEDDING)
        elif _head_differs(state):
            raise ValueError(f"{source}: tie_word_embeddings is true but {_TIED_HEAD} differs "
                             f"from {_EMBEDDING}; load with from_pretrained (which unties it "
                             "as transformers does) or set tie_word_embeddings to false")
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


def read_checkpoint(path) -> tuple[TinyLlamaConfig, dict[str, torch.Tensor]]:
    """Config and HF-layout state dict of a local folder, reconciled as ``transformers`` does.

    A config with ``tie_word_embeddings: true`` whose file holds an ``lm_head.weight``
    different from the embedding: transformers keeps both tensors, unties them and warns.
    So do we (UserWarning naming the file), so that logits equal transformers' logits.
    """
    config, state = read_config(path), read_state_dict(path)
    if config.tie_word_embeddings and _head_differs(state):
        warnings.warn(f"{Path(path)}: config.json sets tie_word_embeddings=true but the weights "
                      f"hold an {_TIED_HEAD} that differs from {_EMBEDDING}; keeping both, "
                      "untied, as transformers does. Set tie_word_embeddings to false in "
                      "config.json to silence this.", UserWarning, stacklevel=3)
        config = config.replace(tie_word_embeddings=False)
    return config, state


def load_pretrained(model_cls, path, device=None):
    """Build ``model_cls(config)`` from a local HF Llama folder and load its weights (fp32)."""
    model = model_cls.from_hf_state_dict(*read_checkpoint(path))
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
