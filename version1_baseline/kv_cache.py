"""A preallocated key/value cache, shared by every version's decode path."""
from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for positions ``[0, length)``.

    Storage per layer: ``k``/``v`` of shape ``(batch, num_kv_heads, max_seq_len, head_dim)``.
    A forward pass over ``S`` new tokens writes positions ``[length, length + S)`` of each
    layer (``write``), and the model calls ``advance(S)`` once after the last layer.
    """

    def __init__(self, config, batch_size: int, device=None, dtype=torch.float32):
        if batch_size <= 0:
            raise ValueError(f"KVCache batch_size must be positive, got {batch_size}")
        shape = (batch_size, config.num_kv_heads, config.max_seq_len, config.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_layers)]
        self.batch_size = batch_size
        self.max_seq_len = config.max_seq_len
        self.length = 0

    def write(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor):
        """Store ``(B, kv_heads, S, D)`` keys/values at ``[length, length+S)``.

        Returns the keys and values of positions ``[0, length+S)`` for this layer.
        """
        end = self.length + k_new.shape[2]
        self.k[layer][:, :, self.length:end] = k_new
        self.v[layer][:, :, self.length:end] = v_new
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, num_tokens: int) -> None:
        self.length += num_tokens

    def reset(self) -> None:
        self.length = 0
