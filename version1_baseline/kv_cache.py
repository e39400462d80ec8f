"""A preallocated key/value cache, shared by every version's decode path."""
from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for positions ``[0, length)``.

    Storage per layer: ``k``/``v`` of shape ``(batch, num_kv_heads, max_seq_len, head_dim)``.
    The position is changed only through the cache's own methods, as gpt-fast's
    ``KVCache.update`` keeps it: a forward pass over ``S`` new tokens writes positions
    ``[length, length + S)`` of each layer (``write``, or a kernel that appends in place into
    ``layer_storage``), and the model calls ``advance(S)`` once after the last layer.
    ``reset`` and ``rewind`` move the position back for a new prompt or a repeated step.
    """

    def __init__(self, config, batch_size: int, device=None, dtype=torch.float32):
        if batch_size <= 0:
            raise ValueError(f"KVCache batch_size must be positive, got {batch_size}")
        shape = (batch_size, config.num_kv_heads, config.max_seq_len, config.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)]
        self.batch_size = batch_size
        self.max_seq_len = config.max_seq_len
        self._length = 0

    @property
    def length(self) -> int:
        """Number of cached positions (read-only: see ``advance``, ``rewind``, ``reset``)."""
        return self._length

    def write(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor):
        """Store ``(B, kv_heads, S, D)`` keys/values at ``[length, length+S)``.

        Returns the keys and values of positions ``[0, length+S)`` for this layer.
        """
        end = self._length + k_new.shape[2]
        self.k[layer][:, :, self._length:end] = k_new
        self.v[layer][:, :, self._length:end] = v_new
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def layer_storage(self, layer: int):
        """``(k, v, position)``: the whole ``(B, kv_heads, max_seq_len, D)`` buffers of one
        layer and the position the next token goes to, for a kernel that appends its
        keys/values in place (version 4's decode layer) instead of calling ``write``."""
        return self.k[layer], self.v[layer], self._length

    def advance(self, num_tokens: int) -> None:
        self._length += num_tokens

    def rewind(self, length: int) -> None:
        """Forget positions ``[length, ...)``: the next write goes to ``length``."""
        if not 0 <= length <= self._length:
            raise ValueError(f"can rewind only to a cached position 0..{self._length}, "
                             f"got {length}")
        self._length = length

    def reset(self) -> None:
        self._length = 0
