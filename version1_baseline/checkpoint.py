"""Sharded training checkpoints with ``torch.distributed.checkpoint`` (DCP), and their
conversion to the Hugging Face folder every version and ``transformers`` load.

A checkpoint folder holds DCP's files (each rank writes its own shards, ``.metadata``
says which bytes hold which slice of which tensor) plus ``meta.json`` (step, version,
config, world size, engine). Because DCP records global shapes and offsets, a checkpoint
written by N ranks under FSDP loads into M ranks, or into one plain process, unchanged:
each loader asks for the slices it holds and DCP reads them (resharding on load).

Keys are the model's own parameter names (``get_model_state_dict`` strips wrapper
prefixes such as DDP's ``module.`` and activation checkpointing's), so the layout is
that of the version that trained (version 2 keeps its fused QKV); ``export_hf`` loads
the checkpoint into a fresh model of that version and writes it in the HF layout.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_state_dict, set_state_dict)

META = "meta.json"


def save_checkpoint(folder, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, meta: dict) -> Path:
    """Write model + optimizer state after ``step`` completed steps; every rank calls this.

    ``meta``: JSON-able facts kept beside the shards (version, config, engine, ...).
    """
    folder = Path(folder)
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(folder))
    if not dist.is_initialized() or dist.get_rank() == 0:
        world = dist.get_world_size() if dist.is_initialized() else 1
        (folder / META).write_text(json.dumps(
            {**meta, "step": step, "saved_world_size": world}, indent=2, sort_keys=True) + "\n")
    if dist.is_initialized():
        dist.barrier()     # meta.json exists on every rank's return
    return folder


def read_meta(folder) -> dict:
    """``meta.json`` of a checkpoint folder (clear error when it is not one)."""
    path = Path(folder) / META
    if not path.is_file() or not (Path(folder) / ".metadata").is_file():
        raise FileNotFoundError(f"{folder}: not a checkpoint folder (expected {META} and DCP's "
                                ".metadata, written by --save-checkpoint)")
    return json.loads(path.read_text())


def load_checkpoint(folder, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Load model + optimizer state into an already wrapped model (any engine, any world
    size); returns the number of steps the checkpoint had completed."""
    meta = read_meta(folder)
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optim"])
    return int(meta["step"])


def load_model_weights(folder, model: torch.nn.Module) -> None:
    """Load only the model weights of a checkpoint into an unwrapped, unsharded model."""
    read_meta(folder)
    state = {"model": get_model_state_dict(model, options=StateDictOptions(strict=True))}
    dcp.load(state, checkpoint_id=str(folder))
    model.load_state_dict(state["model"], strict=True)


def export_hf(folder, model: torch.nn.Module, out) -> Path:
    """Write checkpoint ``folder`` as a Hugging Face Llama folder at ``out``.

    ``model``: a fresh, unwrapped model of the version that trained (same layout), on
    CPU. Run in one process (no process group needed); returns ``out``.
    """
    load_model_weights(folder, model)
    model.save_pretrained(out)
    return Path(out)
