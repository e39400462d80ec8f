"""Prefill + KV-cache decode, greedy or top-k/temperature sampling, for any version's model;
``stream`` yields each token as it is chosen, ``generate`` returns them all.

The model needs ``new_cache(batch, device, dtype)`` and ``model(ids, cache=cache)``.
"""
from __future__ import annotations

import torch


def sample_next(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits: (B, V) -> next token ids (B,) int64. temperature 0 means greedy (argmax)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def generate(model, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """prompt: (B, P) int64 -> (B, P + max_new_tokens) int64 (``stream``, collected)."""
    return torch.cat([prompt, *stream(model, prompt, max_new_tokens, temperature, top_k,
                                      generator)], dim=1)


def stream(model, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
           top_k: int | None = None, generator: torch.Generator | None = None):
    """Yield each new token as a (B, 1) int64 tensor the moment it is chosen.

    One prefill pass over the prompt (B, P) fills the KV cache; each further token costs
    one decode pass over a single position. Raises ValueError if P + max_new_tokens
    exceeds ``max_seq_len`` (checked before any work is done).
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    limit = model.config.max_seq_len
    if prompt.dim() != 2:
        raise ValueError(f"prompt must have shape (batch, prompt_len), got {tuple(prompt.shape)}")
    if prompt.shape[1] + max_new_tokens > limit:
        raise ValueError(f"prompt of {prompt.shape[1]} tokens + {max_new_tokens} new tokens "
                         f"exceeds max_seq_len {limit}")
    if max_new_tokens == 0:
        return
    model.eval()
    with torch.no_grad():
        cache = model.new_cache(prompt.shape[0], device=prompt.device)
        logits = model(prompt, cache=cache)
    for i in range(max_new_tokens):
        nxt = sample_next(logits[:, -1], temperature, top_k, generator)[:, None]
        yield nxt
        if i + 1 < max_new_tokens:
            with torch.no_grad():
                logits = model(nxt, cache=cache)
