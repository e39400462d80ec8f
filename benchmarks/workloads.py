"""The three workloads every version is timed on: train, prefill and decode.

A workload is a zero-argument ``step`` closure plus how many tokens one step
processes. The closures are built the same way for every version, so the
only thing that differs between two versions' numbers is the model.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from version1_baseline.data import MarkovCorpus
from version1_baseline.errors import UserError
from version1_baseline.train import Trainer, autocast_context

# Inference: a few distinct batches, cycled, so that no step sees the data the previous
# one left in cache (inputs rotated rather than one tensor reused). Training never cycles.
_ROTATING_BATCHES = 4
# Steps the harness runs on a workload after timing it (kernel/op count, peak memory, one
# profiled step): callers add these to the train batches they ask to have drawn up front.
UNTIMED_STEPS = 4


@dataclass
class Workload:
    mode: str
    step: Callable[[], object]
    tokens_per_step: int
    losses: list = field(default_factory=list)   # train: detached loss tensors, one per step
    loss_floor: float | None = None   # train: lowest expected loss on this corpus (nats)

    def loss_values(self) -> list[float]:
        return [float(x) for x in self.losses]


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on GPU, fp32 on CPU (the interpreter and CPU kernels want fp32)."""
    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in table:
        raise UserError(f"dtype must be one of auto, {', '.join(table)}; got {name!r}")
    if table[name] != torch.float32 and device.type != "cuda":
        raise UserError(f"dtype {name} uses autocast, which this project runs on GPU only; "
                        "use --dtype fp32 on CPU")
    return table[name]


def dtype_label(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16 (autocast)",
            torch.float16: "fp16 (autocast)"}[dtype]


def make_workload(model: torch.nn.Module, mode: str, batch_size: int, seq_len: int,
                  device: torch.device, dtype: torch.dtype, seed: int = 0,
                  loss_fn=None, train_batches: int = 0, corpus=None) -> Workload:
    """Build the ``step`` closure for ``mode`` on ``model`` (already on ``device``).

    train: one optimizer step on a FRESH (batch, seq_len) batch of Markov-chain tokens
    each step (seeded, so deterministic), with ``loss_fn(model, ids)`` when the version has
    its own (e.g. a fused cross-entropy). Sampling the chain on the host costs about as much
    as a tiny model's step, so the first ``train_batches`` batches are drawn here, before any
    timing (pass warm-up + timed steps + ``UNTIMED_STEPS``); later steps draw their own.
    ``Workload.loss_floor`` is the corpus's entropy floor for that sequence length.
    ``corpus``: train on its batches instead (``corpus.sample(batch, seq_len, generator)``,
    e.g. ``version1_baseline.text_corpus.TextCorpus``; no known floor).
    prefill: one forward pass over a (batch, seq_len) prompt into an empty KV cache.
    decode: one forward pass of a single new token per sequence at position seq_len-1,
    after a prefill of seq_len-1 tokens (the cache is rewound before every step).
    """
    cfg = model.config
    if seq_len > cfg.max_seq_len:
        raise ValueError(f"seq_len {seq_len} exceeds the model's max_seq_len {cfg.max_seq_len}")
    markov = MarkovCorpus(cfg.vocab_size, seed=seed)
    source = markov if corpus is None else corpus
    g = torch.Generator().manual_seed(seed + 1)

    if mode == "train":
        if seq_len < 2:
            raise ValueError("train mode needs seq_len >= 2")
        if train_batches < 0:
            raise ValueError(f"train_batches must be >= 0, got {train_batches}")
        # Fresh data every step: cycling a few batches lets the model memorize them, and the
        # loss then falls below the corpus's entropy floor, which no learner can beat.
        ready = deque(source.sample(batch_size, seq_len, generator=g).to(device)
                      for _ in range(train_batches))

        def next_batch() -> torch.Tensor:
            if ready:
                return ready.popleft()
            return source.sample(batch_size, seq_len, generator=g).to(device)

        trainer = Trainer(model, dtype=dtype, loss_fn=loss_fn)
        work = Workload(mode, step=lambda: None, tokens_per_step=batch_size * seq_len,
                        loss_floor=markov.loss_floor(seq_len) if corpus is None else None)
        work.step = lambda: work.losses.append(trainer.step(next_batch()))
        return work

    batches = [markov.sample(batch_size, seq_len, generator=g).to(device)
               for _ in range(_ROTATING_BATCHES)]
    rotation = itertools.cycle(batches)

    model.eval()
    autocast = autocast_context(device.type, dtype)
    with autocast:  # the cache takes the compute dtype (bf16 under autocast), not fp32
        cache = model.new_cache(batch_size, device=device)

    if mode == "prefill":
        @torch.no_grad()
        def prefill_step():
            cache.reset()
            with autocast:
                return model(next(rotation), cache=cache)
        return Workload(mode, step=prefill_step, tokens_per_step=batch_size * seq_len)

    if mode == "decode":
        if seq_len < 2:
            raise ValueError("decode mode needs seq_len >= 2 (a prompt plus the decoded token)")
        prompt = batches[0]
        with torch.no_grad(), autocast:
            model(prompt[:, :-1], cache=cache)
        context = seq_len - 1
        new_token = prompt[:, -1:]

        @torch.no_grad()
        def decode_step():
            cache.rewind(context)     # every step decodes the same position
            with autocast:
                return model(new_token, cache=cache)
        return Workload(mode, step=decode_step, tokens_per_step=batch_size)

    raise ValueError(f"mode must be one of train, prefill, decode; got {mode!r}")
