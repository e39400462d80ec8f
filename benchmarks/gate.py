"""The correctness gate: a version is timed only if its logits match version 1's.

Both models hold the same weights (version 1's state dict in HF layout); the
comparison runs in fp32 on the benchmark device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Relative to the largest |logit| of version 1. fp32 kernels that reorder sums agree to
# about 1e-6; 1e-4 leaves room for that and catches any real error (those are O(1)).
GATE_TOLERANCE = 1e-4


@dataclass
class GateResult:
    passed: bool
    max_abs_error: float
    relative_error: float
    detail: str


@torch.no_grad()
def check_against_v1(model, reference, device: torch.device, seed: int = 0,
                     batch_size: int = 2, seq_len: int | None = None) -> GateResult:
    """Compare ``model(ids)`` with ``reference(ids)`` on fresh random ids (fp32, no cache)."""
    cfg = reference.config
    seq_len = min(seq_len or cfg.max_seq_len, cfg.max_seq_len)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, seq_len), generator=g).to(device)
    model.eval()
    reference.eval()
    expected = reference(ids).float()
    got = model(ids).float()
    if got.shape != expected.shape:
        return GateResult(False, float("inf"), float("inf"),
                          f"logits shape {tuple(got.shape)} != v1's {tuple(expected.shape)}")
    if not torch.isfinite(got).all():
        return GateResult(False, float("inf"), float("inf"), "logits contain NaN or inf")
    err = float((got - expected).abs().max())
    rel = err / max(float(expected.abs().max()), 1e-12)
    ok = rel <= GATE_TOLERANCE
    return GateResult(ok, err, rel, f"max |Δlogit| {err:.2e} ({rel:.1e} of max |logit|; "
                                    f"limit {GATE_TOLERANCE:.0e})")
