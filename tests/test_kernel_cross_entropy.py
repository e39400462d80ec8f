"""Cross-entropy with the gradient computed in the forward vs its ``reference`` (v3)."""
import pytest
import torch

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
    ref = ce.reference(logits, labels, ignore_index=-100)
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
    ref = ce.reference(lf, labels)
    (grad_ref,) = torch.autograd.grad(ref, lf)
    torch.testing.assert_close(loss, ref, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(grad.float(), grad_ref, rtol=2e-2, atol=1e-5)


# ---- peer cases (Liger-Kernel's cross-entropy tests): masked vocabulary, ignore_index ------
NEG_INF = float("-inf")


def _loss_and_grad(fn, logits, labels, ignore_index):
    x = logits.clone().requires_grad_()
    loss = fn(x, labels, ignore_index)
    (grad,) = torch.autograd.grad(1.5 * loss, x)
    return loss, grad


def _ours(x, labels, ignore_index):
    with runtime.poison_outputs():
        return ce.cross_entropy(x, labels, ignore_index)


def _torch(x, labels, ignore_index):
    return ce.reference(x, labels, ignore_index)


@pytest.mark.parametrize("rows,vocab,ignore_index", [(3, 2100, -100), (9, 123, 2), (4, 17, -1)])
def test_partially_masked_rows_equal_torch(rows, vocab, ignore_index):
    """Some logits -inf (a masked vocabulary), including a whole first block of 1024 in the
    interpreter, so the running max starts at -inf; Liger also uses an in-range ignore_index."""
    gen = torch.Generator().manual_seed(vocab)
    logits = 3 * torch.randn(rows, vocab, generator=gen)
    logits[torch.rand(rows, vocab, generator=gen) < 0.4] = NEG_INF
    logits[0, : vocab * 3 // 4] = NEG_INF
    logits[1, vocab // 2:] = NEG_INF
    labels = torch.randint(0, vocab, (rows,), generator=gen)
    labels[0], labels[1] = vocab - 1, 0
    logits[torch.arange(rows), labels] = torch.randn(rows, generator=gen)  # labels kept
    labels[-1] = ignore_index
    logits, labels = logits.to(DEV), labels.to(DEV)
    loss, grad = _loss_and_grad(_ours, logits, labels, ignore_index)
    ref, grad_ref = _loss_and_grad(_torch, logits, labels, ignore_index)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6)
    assert torch.all(grad[logits == NEG_INF] == 0)  # masked entries: zero probability


def test_label_on_a_masked_entry_gives_inf_loss_like_torch():
    logits = torch.randn(2, 40, generator=torch.Generator().manual_seed(1)).to(DEV)
    logits[0, 5] = NEG_INF
    labels = torch.tensor([5, 3], device=DEV)
    loss, grad = _loss_and_grad(_ours, logits, labels, -100)
    ref, grad_ref = _loss_and_grad(_torch, logits, labels, -100)
    assert loss.item() == ref.item() == float("inf")
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6)


def test_fully_masked_row_nan_if_counted_zero_if_ignored():
    """A row of all -inf has no distribution. Counted: loss and that row's gradient are NaN,
    as in torch (documented in the kernel). Ignored: loss equals torch's and the row's
    gradient is exactly 0 (torch's is NaN there; an ignored row contributes nothing)."""
    logits = torch.randn(3, 1500, generator=torch.Generator().manual_seed(2)).to(DEV)
    logits[2] = NEG_INF
    counted = torch.tensor([4, 7, 9], device=DEV)
    loss, grad = _loss_and_grad(_ours, logits, counted, -100)
    ref, grad_ref = _loss_and_grad(_torch, logits, counted, -100)
    assert torch.isnan(loss) and torch.isnan(ref)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6, equal_nan=True)

    ignored = torch.tensor([4, 7, -100], device=DEV)
    loss, grad = _loss_and_grad(_ours, logits, ignored, -100)
    ref, grad_ref = _loss_and_grad(_torch, logits, ignored, -100)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad[:2], grad_ref[:2], rtol=1e-5, atol=1e-6)
    assert torch.all(grad[2] == 0)
