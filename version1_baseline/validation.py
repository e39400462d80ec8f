"""Input checks at the model boundary, shared by every version."""
from __future__ import annotations

import torch

_INT_DTYPES = (torch.int64, torch.int32)


@torch.compiler.disable  # data-dependent checks: run eagerly, never traced
def check_input_ids(input_ids, config, cache=None) -> int:
    """Validate a (B, S) batch of token ids; returns the number of cached positions.

    Raises ``TypeError`` for a non-tensor or a non-integer dtype, ``ValueError`` for a
    wrong rank, an empty batch or sequence, an id outside ``[0, vocab)``, a sequence
    running past ``max_seq_len``, or a batch that does not match the cache.
    """
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dtype not in _INT_DTYPES:
        raise TypeError(f"input_ids must be int64 or int32 token ids, got dtype {input_ids.dtype}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (batch, seq), got {tuple(input_ids.shape)}")
    bsz, seq = input_ids.shape
    if bsz == 0 or seq == 0:
        raise ValueError(f"input_ids is empty: shape {tuple(input_ids.shape)}; "
                         "need at least one sequence of at least one token")
    lo, hi = int(input_ids.min()), int(input_ids.max())
    if lo < 0 or hi >= config.vocab_size:
        raise ValueError(f"token ids must lie in [0, {config.vocab_size}), "
                         f"got values in [{lo}, {hi}]")
    past = 0 if cache is None else cache.length
    if past + seq > config.max_seq_len:
        where = f" after {past} cached tokens" if past else ""
        raise ValueError(f"sequence of {seq} tokens{where} exceeds max_seq_len "
                         f"{config.max_seq_len}")
    if cache is not None and cache.batch_size != bsz:
        raise ValueError(f"input batch {bsz} does not match the KV cache batch {cache.batch_size}")
    return past
