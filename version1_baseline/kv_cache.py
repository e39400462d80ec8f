"""Preallocated key/value caches, shared by every version's decode path.

Two layouts of the same storage, chosen when the cache is made (``model.new_cache``):

* ``KVCache``: the position is a Python int and attention reads the filled prefix
  ``[0, length)``. Eager code pays only for what is filled. Under ``torch.compile`` the int
  is a guarded value, so each position is a graph of its own (or, with automatic dynamic
  shapes, a symbolic length: what the ``rtl`` backend's graph matching reads).
* ``StaticKVCache``: gpt-fast's layout. The position is a 0-d int64 tensor on the cache's
  device, written with ``index_copy_``, and attention reads the whole ``max_seq_len``
  buffers behind a causal mask that also hides the unfilled tail. Every decode step has the
  same shapes and no Python int that changes, so ``torch.compile`` traces one graph for
  every position.

Either way the position moves only through the cache's own methods: a forward pass over
``S`` new tokens writes positions ``[length, length + S)`` of each layer (``write``, or a
kernel that appends in place into ``layer_storage``), and the model calls ``advance(S)``
once after the last layer. ``reset`` and ``rewind`` move it back for a new prompt or a
repeated step.
"""
from __future__ import annotations

import torch


def query_positions(past, seq: int, device) -> torch.Tensor:
    """(seq,) int64: the absolute positions ``past .. past + seq - 1`` of the new tokens.

    ``past`` is an int (``KVCache.start``: traced as ``arange(past, past + seq)``) or a 0-d
    int64 tensor (``StaticKVCache.start``: no Python value reaches a traced graph).
    """
    if isinstance(past, torch.Tensor):
        return past + torch.arange(seq, device=device)
    return torch.arange(past, past + seq, device=device)


class KVCache:
    """Keys and values of every layer for positions ``[0, length)``; the position is an int.

    Storage per layer: ``k``/``v`` of shape ``(batch, num_kv_heads, max_seq_len, head_dim)``.
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

    @property
    def start(self):
        """The position of the next token, as attention and RoPE take it (``query_positions``)."""
        return self._length

    def write(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor):
        """Store ``(B, kv_heads, S, D)`` keys/values at ``[length, length+S)``.

        Returns the keys and values attention reads for this layer: positions ``[0, length+S)``.
        """
        end = self._length + k_new.shape[2]
        self.k[layer][:, :, self._length:end] = k_new
        self.v[layer][:, :, self._length:end] = v_new
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def layer_storage(self, layer: int):
        """``(k, v, position)``: the whole ``(B, kv_heads, max_seq_len, D)`` buffers of one
        layer and the position (int) the next token goes to, for a kernel that appends its
        keys/values in place (version 4's decode layer) instead of calling ``write``."""
        return self.k[layer], self.v[layer], self.length

    def advance(self, num_tokens: int) -> None:
        self._length += num_tokens

    def rewind(self, length: int) -> None:
        """Forget positions ``[length, ...)``: the next write goes to ``length``."""
        if not 0 <= length <= self.length:
            raise ValueError(f"can rewind only to a cached position 0..{self.length}, "
                             f"got {length}")
        self._length = length

    def reset(self) -> None:
        self._length = 0


class StaticKVCache(KVCache):
    """``KVCache`` with the position as a 0-d int64 device tensor and attention over the whole
    buffers (see the module docstring): one compiled graph for every position.

    ``length`` reads the tensor back (a device sync; host-side checks and the v3/v4 kernels'
    arguments use it, never a traced graph). Positions past ``length`` are read and masked:
    they must stay finite (they are zeros or an earlier sequence's keys), since a masked
    probability is 0 and ``0 * nan`` is not.
    """

    def __init__(self, config, batch_size: int, device=None, dtype=torch.float32):
        super().__init__(config, batch_size, device, dtype)
        del self._length   # the tensor is the one position: no int to fall out of step
        self._position = torch.zeros((), dtype=torch.int64, device=device)

    @property
    def length(self) -> int:
        return int(self._position)

    @property
    def start(self) -> torch.Tensor:
        return self._position

    def write(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor):
        """Store ``(B, kv_heads, S, D)`` keys/values at ``[length, length+S)``.

        Returns the whole ``(B, kv_heads, max_seq_len, D)`` buffers of this layer: positions
        past ``length+S`` hold zeros or stale keys, which the causal mask hides.
        """
        index = query_positions(self._position, k_new.shape[2], k_new.device)
        k, v = self.k[layer], self.v[layer]
        k.index_copy_(2, index, k_new.to(k.dtype))
        v.index_copy_(2, index, v_new.to(v.dtype))
        return k, v

    def advance(self, num_tokens: int) -> None:
        self._position += num_tokens   # in place: a compiled graph mutates its input

    def rewind(self, length: int) -> None:
        """Forget positions ``[length, ...)``: the next write goes to ``length``."""
        current = self.length
        if not 0 <= length <= current:
            raise ValueError(f"can rewind only to a cached position 0..{current}, got {length}")
        self._position.fill_(length)

    def reset(self) -> None:
        self._position.zero_()
