"""Checks every version's model test makes against version 1, written once.

A version's test passes its own model class and loss; the comparison logic (same
weights, same batches, every parameter's gradient, the training trajectory) lives here.
"""
from __future__ import annotations

import torch

import version1_baseline as v1
from version2_fused.model import unfuse_state_dict


def make_pair(model_cls, config, seed: int = 0, device=None):
    """(v1 reference, ``model_cls`` model) holding the same seeded weights, on ``device``."""
    torch.manual_seed(seed)
    ref = v1.TinyLlama(config).to(device)
    model = model_cls.from_hf_state_dict(config, ref.to_hf_state_dict()).to(device)
    return ref, model


def token_ids(vocab_size: int, bsz: int, seq: int, seed: int = 0, device=None) -> torch.Tensor:
    """Fresh (bsz, seq) int64 ids from their own generator (the global RNG is untouched)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (bsz, seq), generator=g).to(device)


def assert_gradients_match(model, ref, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """After both backward passes: every gradient present, and, in the HF layout (fused
    ``qkv_proj`` / ``gate_up_proj`` gradients split back into version 1's parameters), the
    same names as version 1's and equal to its gradients (a missing gradient means a
    kernel cut the autograd graph)."""
    ref_params = dict(ref.named_parameters())
    grads = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient: the graph was cut"
        grads[name] = p.grad
    fusions = getattr(model, "fusions", None)
    if fusions is not None:   # version 2 and the rungs built on it
        grads = unfuse_state_dict(grads, model.config, fusions)
    assert sorted(grads) == sorted(ref_params)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_params[name].grad, rtol=rtol, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")


def assert_training_matches(ref, model, loss_fn, vocab_size: int, device=None, steps: int = 20,
                            batch: int = 2, seq: int = 9) -> None:
    """``steps`` AdamW steps on the same Markov batches: the loss trajectories agree, and the
    reference's loss falls (so the comparison is of a model that learns)."""
    batches = v1.MarkovCorpus(vocab_size, seed=0).batches(batch, seq, seed=1)
    trainers = (v1.Trainer(ref, lr=3e-3), v1.Trainer(model, lr=3e-3, loss_fn=loss_fn))
    losses = ([], [])
    for _ in range(steps):
        ids = next(batches).to(device)
        for trainer, out in zip(trainers, losses):
            out.append(float(trainer.step(ids)))
    assert losses[0][-1] < losses[0][0]
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]),
                               rtol=1e-4, atol=1e-4)
