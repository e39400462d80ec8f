"""A deterministic synthetic corpus that a small model can actually learn.

Tokens follow a fixed random Markov chain in which every token has only
``branching`` possible successors. A model that learns the chain reaches a loss
near the chain's entropy rate (about ln(branching)), far below ln(vocab), so a
falling loss shows real learning; random labels would not. Training draws a fresh
batch every step: a loss far below ``loss_floor`` would mean memorized batches.
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

    def transition_matrix(self) -> torch.Tensor:
        """(vocab, vocab) fp64: row i holds P(next = j | current = i)."""
        dense = torch.zeros(self.vocab_size, self.vocab_size, dtype=torch.float64)
        dense.scatter_add_(1, self.successors, self._probs64())
        return dense

    def _probs64(self) -> torch.Tensor:
        # renormalized in fp64: fp32 rows sum to 1 only within 1e-7, which would leak mass
        # over thousands of power-iteration steps (multinomial renormalizes the same way)
        p = self.probs.double()
        return p / p.sum(-1, keepdim=True)

    def _next_token_entropy(self) -> torch.Tensor:
        """(vocab,) fp64: entropy in nats of the next token given each current token."""
        p = self._probs64()
        return -(p * p.log()).sum(-1)

    def stationary_distribution(self, tol: float = 1e-12, max_iter: int = 100_000
                                ) -> torch.Tensor:
        """(vocab,) fp64 pi with pi P = pi, by power iteration on the lazy chain (P + I)/2
        (same pi, and aperiodic, so the iteration converges even for a periodic chain)."""
        lazy = 0.5 * (self.transition_matrix() + torch.eye(self.vocab_size, dtype=torch.float64))
        pi = torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=torch.float64)
        for _ in range(max_iter):
            new = pi @ lazy
            if (new - pi).abs().sum() < tol:
                return new / new.sum()
            pi = new
        raise RuntimeError(f"stationary distribution did not converge in {max_iter} iterations")

    def entropy_rate(self) -> float:
        """The chain's entropy rate in nats: sum_i pi_i H(next | i), pi stationary. The
        lowest loss per token any model can reach on long sequences of this corpus."""
        return float(self.stationary_distribution() @ self._next_token_entropy())

    def loss_floor(self, seq_len: int) -> float:
        """The lowest expected ``causal_lm_loss`` on ``sample(batch, seq_len)`` batches, nats.

        Position t predicts token t+1, whose entropy given token t is H(next | x_t); x_0 is
        uniform and x_t is distributed as uniform @ P^t. So the floor is the mean over
        t = 0 .. seq_len-2 of (uniform @ P^t) . H: the entropy rate with the chain's start-up.
        """
        if seq_len < 2:
            raise ValueError(f"a loss needs seq_len >= 2, got {seq_len}")
        step, h = self.transition_matrix(), self._next_token_entropy()
        dist = torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=torch.float64)
        total = 0.0
        for _ in range(seq_len - 1):
            total += float(dist @ h)
            dist = dist @ step
        return total / (seq_len - 1)

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
