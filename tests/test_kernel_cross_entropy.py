"""Cross-entropy with the gradient computed in the forward vs ``F.cross_entropy`` (v3)."""
import pytest
import torch
import torch.nn.functional as F

from version3_triton import runtime
from version3_triton.kernels import cross_entropy as ce

DEV = runtime.DEVICE


@pytest.mark.parametrize("rows,vocab", [(1, 5), (17, 123), (5, 2100), (64, 1000)])
def test_loss_and_grad(rows, vocab):
    torch.manual_seed(vocab)
    logits = (4 * torch.randn(rows, vocab, device=DEV)).requires_grad_()
    labels = torch.randint(0, vocab, (rows,), device=DEV)
    if rows > 2:
        labels[::3] = -100
    with runtime.poison_outputs():
        loss = ce.cross_entropy(logits, labels)
        (grad,) = torch.autograd.grad(2.5 * loss, logits)  # a non-unit upstream gradient
    ref = F.cross_entropy(logits, labels, ignore_index=-100)
    (grad_ref,) = torch.autograd.grad(2.5 * ref, logits)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6)


def test_all_rows_ignored_gives_zero_loss_and_grad():
    logits = torch.randn(3, 10, device=DEV, requires_grad=True)
    loss = ce.cross_entropy(logits, torch.full((3,), -100, device=DEV))
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.item() == 0.0 and torch.count_nonzero(grad) == 0


def test_bad_labels_raise_clear_errors():
    logits = torch.randn(2, 10, device=DEV)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        ce.cross_entropy(logits, torch.tensor([0, 10], device=DEV))
    with pytest.raises(ValueError, match="same number of rows"):
        ce.cross_entropy(logits, torch.tensor([0], device=DEV))
    with pytest.raises(TypeError, match="supported: int64"):
        ce.cross_entropy(logits, torch.tensor([0.0, 1.0], device=DEV))


@pytest.mark.gpu
def test_bf16_large_vocab_gpu():
    logits = torch.randn(4096, 32000, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, 32000, (4096,), device=DEV)
    loss = ce.cross_entropy(logits, labels)
    (grad,) = torch.autograd.grad(loss, logits)
    lf = logits.float().detach().requires_grad_()
    ref = F.cross_entropy(lf, labels)
    (grad_ref,) = torch.autograd.grad(ref, lf)
    torch.testing.assert_close(loss, ref, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(grad.float(), grad_ref, rtol=2e-2, atol=1e-5)
