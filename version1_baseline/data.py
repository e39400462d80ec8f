"""A deterministic synthetic corpus that a small model can actually learn.

Tokens follow a fixed random Markov chain in which every token has only
``branching`` possible successors. A model that learns the chain reaches a loss
near the chain's entropy rate (about ln(branching)), far below ln(vocab), so a
falling loss shows real learning; random labels would not.
"""
from __future__ import annotations

import math

import torch


class MarkovCorpus:
    """Seeded Markov-chain token source.

    ``successors``: (vocab, branching) int64, the tokens that may follow each token.
    ``probs``: (vocab, branching) fp32, their probabilities (each row sums to 1).
    """

    def __init__(self, vocab_size: int, seed: int = 0, branching: int = 4):
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if not 1 <= branching <= vocab_size:
            raise ValueError(f"branching must be in [1, {vocab_size}], got {branching}")
        g = torch.Generator().manual_seed(seed)
        self.vocab_size, self.branching, self.seed = vocab_size, branching, seed
        self.successors = torch.stack(
            [torch.randperm(vocab_size, generator=g)[:branching] for _ in range(vocab_size)])
        weights = torch.rand(vocab_size, branching, generator=g) + 0.5
        self.probs = weights / weights.sum(-1, keepdim=True)

    def entropy_rate(self) -> float:
        """Expected next-token entropy in nats (uniform start distribution as the weighting)."""
        return float(-(self.probs * self.probs.log()).sum(-1).mean())

    def uniform_loss(self) -> float:
        """The loss of a model that knows nothing: ln(vocab)."""
        return math.log(self.vocab_size)

    def sample(self, batch_size: int, seq_len: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Return (batch_size, seq_len) int64 token ids drawn from the chain (on CPU)."""
        if batch_size <= 0 or seq_len <= 0:
            raise ValueError(f"batch_size and seq_len must be positive, got {batch_size}, {seq_len}")
        g = generator or torch.Generator().manual_seed(self.seed + 1)
        out = torch.empty(batch_size, seq_len, dtype=torch.int64)
        out[:, 0] = torch.randint(self.vocab_size, (batch_size,), generator=g)
        for t in range(1, seq_len):
            prev = out[:, t - 1]
            choice = torch.multinomial(self.probs[prev], 1, generator=g).squeeze(1)
            out[:, t] = self.successors[prev, choice]
        return out

    def batches(self, batch_size: int, seq_len: int, seed: int = 1):
        """An endless, seeded iterator of fresh batches."""
        g = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, seq_len, generator=g)
