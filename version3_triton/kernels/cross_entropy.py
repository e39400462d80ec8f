"""Cross-entropy over the vocabulary with the gradient computed in the forward.

logits: (N, V), labels: (N,) int (``ignore_index`` rows contribute nothing); returns the
mean loss over the non-ignored rows as an fp32 scalar.

One program per row walks the vocabulary in blocks with an online log-sum-exp (running max
and rescaled running sum), then walks it again writing ``(softmax - onehot) / n_valid``.
The softmax is never materialized in fp32 and no second kernel reads the logits in the
backward: the backward only scales the stored gradient by the incoming scalar. At a large
vocabulary that saves a (N, V) fp32 buffer and a full read of the logits.

``n_valid`` is read by the kernel from a device tensor, so the forward never waits on the
host for it.

Masked vocabulary (some logits ``-inf``) gives those entries zero probability and zero
gradient, equal to ``F.cross_entropy``; a label on a masked entry gives an infinite loss,
as in torch. A row whose logits are all ``-inf`` has no distribution: if it is counted, the
loss and that row's gradient are NaN, as in torch. If its label is ``ignore_index`` it
contributes nothing - loss as torch, gradient exactly 0 (torch gives NaN there, an artifact
of taking log_softmax before dropping the row).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import runtime


@triton.jit
def _cross_entropy_kernel(LOGITS, LABELS, LOSS, GRAD, N_VALID, n_cols, ignore_index,
                          BLOCK: tl.constexpr):
    """LOGITS, GRAD: (N, V) contiguous; LABELS: (N,); LOSS: (N,) fp32; N_VALID: 1 int."""
    row = tl.program_id(0).to(tl.int64)
    base = row * n_cols
    label = tl.load(LABELS + row)
    cols = tl.arange(0, BLOCK)
    m = float("-inf")
    total = 0.0
    for start in range(0, n_cols, BLOCK):
        x = tl.load(LOGITS + base + start + cols, mask=start + cols < n_cols,
                    other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        # Masked vocabulary (-inf logits): while every logit so far is -inf, m_new is -inf
        # and -inf - (-inf) would be NaN. Shifting by 0 instead gives exp(-inf) = 0: a
        # masked entry adds zero probability.
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        total = total * tl.exp(m - shift) + tl.sum(tl.exp(x - shift), axis=0)
        m = m_new
    lse = m + tl.log(total)
    ignored = label == ignore_index
    # The label's own logit; an ignored row's label is not an index and is never read.
    x_label = tl.load(LOGITS + base + label, mask=label != ignore_index, other=0.0).to(tl.float32)
    tl.store(LOSS + row, tl.where(ignored, 0.0, lse - x_label))
    scale = tl.where(ignored, 0.0, 1.0 / tl.load(N_VALID).to(tl.float32))
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        mask = offs < n_cols
        x = tl.load(LOGITS + base + offs, mask=mask, other=0.0).to(tl.float32)
        grad = tl.exp(x - lse) - tl.where(offs == label, 1.0, 0.0)
        # where, not a multiply by 0: a fully -inf row has NaN softmax, and an ignored row
        # must still contribute exactly nothing.
        grad = tl.where(ignored, 0.0, grad * scale)
        tl.store(GRAD + base + offs, grad.to(GRAD.dtype.element_ty), mask=mask)


class CrossEntropyFunction(torch.autograd.Function):
    """logits (N, V) fp32/fp16/bf16, labels (N,) -> mean loss, fp32 scalar."""

    @staticmethod
    def forward(ctx, logits, labels, ignore_index):
        n_rows, n_cols = logits.shape
        valid = labels != ignore_index
        n_valid = valid.sum().clamp_min(1)  # a device scalar; an all-ignored batch gives 0
        losses = runtime.new_output((n_rows,), torch.float32, logits.device)
        grad = runtime.new_output(logits.shape, logits.dtype, logits.device)
        block = min(triton.next_power_of_2(n_cols), 4096 if not runtime.INTERPRET else 1024)
        runtime.count("cross_entropy_fwd")
        _cross_entropy_kernel[(n_rows,)](logits, labels, losses, grad, n_valid, n_cols,
                                         ignore_index, BLOCK=block, num_warps=8)
        ctx.save_for_backward(grad)
        return losses.sum() / n_valid

    @staticmethod
    def backward(ctx, dloss):
        (grad,) = ctx.saved_tensors
        runtime.count("cross_entropy_bwd")  # a scale of the stored gradient, not a kernel
        return grad * dloss.to(grad.dtype), None, None


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                  ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of logits (N, V) against labels (N,), skipping ``ignore_index``.

    Labels outside [0, V) other than ``ignore_index`` raise ValueError (checked on the host,
    which synchronizes a GPU once: an out-of-range label would otherwise read out of bounds).
    """
    logits = runtime.check_tensor(logits, "logits", dim=2)
    labels = runtime.check_tensor(labels, "labels", dtypes=(torch.int64, torch.int32), dim=1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels ({labels.shape[0]}) and logits ({logits.shape[0]} rows) "
                         "must have the same number of rows")
    if logits.numel() == 0:
        raise ValueError(f"logits is empty: shape {tuple(logits.shape)}")
    real = labels[labels != ignore_index]
    if real.numel() and (int(real.min()) < 0 or int(real.max()) >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) or equal ignore_index "
                         f"{ignore_index}; got values in [{int(real.min())}, {int(real.max())}]")
    return CrossEntropyFunction.apply(logits, labels, int(ignore_index))


def reference(logits: torch.Tensor, labels: torch.Tensor,
              ignore_index: int = -100) -> torch.Tensor:
    """Plain PyTorch ``cross_entropy``: ``F.cross_entropy`` on fp32 logits (mean over counted
    rows). The test's check and the bench's baseline."""
    return torch.nn.functional.cross_entropy(logits.float(), labels, ignore_index=ignore_index)
