"""The training step and loop, shared by every version (they differ only in the model)."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts token t+1.

    logits: (B, S, V) any float dtype; input_ids: (B, S) int. Returns a scalar fp32 mean
    over the B*(S-1) predictions (the last position has no label).
    """
    if input_ids.shape[1] < 2:
        raise ValueError("training needs sequences of at least 2 tokens (one prediction)")
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = input_ids[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels)


def autocast_context(device_type: str, dtype: torch.dtype):
    """Mixed precision on GPU when dtype is bf16/fp16; fp32 (no autocast) otherwise."""
    if dtype in (torch.bfloat16, torch.float16) and device_type == "cuda":
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


class Trainer:
    """One AdamW step per call: forward, shifted cross-entropy, backward, update.

    ``loss_fn(model, input_ids) -> scalar loss`` can be overridden by a version that fuses
    the head and the loss (for example a fused cross-entropy kernel).
    """

    def __init__(self, model: torch.nn.Module, lr: float = 3e-3, weight_decay: float = 0.0,
                 dtype: torch.dtype = torch.float32, loss_fn=None):
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"training dtype must be fp32, bf16 or fp16, got {dtype}")
        self.model = model
        self.device_type = next(model.parameters()).device.type
        self.dtype = dtype
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                           betas=(0.9, 0.95))
        # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
        self.scaler = torch.amp.GradScaler(
            self.device_type, enabled=(dtype == torch.float16 and self.device_type == "cuda"))
        self.loss_fn = loss_fn or (lambda m, ids: causal_lm_loss(m(ids), ids))

    def step(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Returns the (detached) loss of this step; does not synchronize the device."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device_type, self.dtype):
            loss = self.loss_fn(self.model, input_ids)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()


def train(model, corpus, steps: int, batch_size: int, seq_len: int, lr: float = 3e-3,
          dtype: torch.dtype = torch.float32, seed: int = 1) -> list[float]:
    """Train on ``corpus`` for ``steps`` steps; returns the loss of every step."""
    device = next(model.parameters()).device
    trainer = Trainer(model, lr=lr, dtype=dtype)
    batches = corpus.batches(batch_size, seq_len, seed=seed)
    return [float(trainer.step(next(batches).to(device))) for _ in range(steps)]
