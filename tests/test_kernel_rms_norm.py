"""RMSNorm and fused add + RMSNorm Triton kernels vs an eager fp32 reference (v3).

On a machine without a GPU these run in the Triton interpreter on CPU tensors.
"""
import pytest
import torch

from version3_triton import runtime
from version3_triton.kernels import rms_norm as rn

DEV = runtime.DEVICE


def leaf(*shape, dtype=torch.float32):
    return torch.randn(*shape, device=DEV, dtype=dtype).requires_grad_()


@pytest.mark.parametrize("shape", [(1, 1, 16), (5, 17, 123), (2, 3, 256), (129, 64)])
def test_rms_norm_forward_and_grads(shape):
    torch.manual_seed(0)
    x, w = leaf(*shape), leaf(shape[-1])
    with runtime.poison_outputs():
        y = rn.rms_norm(x, w, 1e-6)
        dy = torch.randn_like(y)
        dx, dw = torch.autograd.grad(y, (x, w), dy)
    y_ref = rn.reference(x, w)
    dx_ref, dw_ref = torch.autograd.grad(y_ref, (x, w), dy)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-5, atol=1e-5)
    # dw sums over every row: the tolerance grows with the row count.
    torch.testing.assert_close(dw, dw_ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1, 16), (5, 17, 123), (3, 130)])
def test_add_rms_norm_forward_and_grads(shape):
    torch.manual_seed(1)
    x, r, w = leaf(*shape), leaf(*shape), leaf(shape[-1])
    with runtime.poison_outputs():
        y, h = rn.add_rms_norm(x, r, w, 1e-5)
        dy, dh = torch.randn_like(y), torch.randn_like(h)
        grads = torch.autograd.grad((y, h), (x, r, w), (dy, dh))
    h_ref = x + r
    y_ref = rn.reference(h_ref, w, 1e-5)
    refs = torch.autograd.grad((y_ref, h_ref), (x, r, w), (dy, dh))
    torch.testing.assert_close(h, h_ref, rtol=0, atol=0)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_add_rms_norm_only_norm_output_used():
    # autograd passes None for the unused sum's gradient; the kernel must treat it as zero.
    x, r, w = leaf(4, 33), leaf(4, 33), leaf(33)
    y, _ = rn.add_rms_norm(x, r, w)
    gx, gr, gw = torch.autograd.grad(y.sum(), (x, r, w))
    ref = torch.autograd.grad(rn.reference(x + r, w).sum(), (x, r, w))
    for got, want in zip((gx, gr, gw), ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_weight_grad_is_fp32_accumulated_across_many_rows():
    # 1000 rows over the few programs of the backward: partial sums must all be counted.
    x, w = leaf(1000, 24), leaf(24)
    dw = torch.autograd.grad(rn.rms_norm(x, w).sum(), w)[0]
    dw_ref = torch.autograd.grad(rn.reference(x, w).sum(), w)[0]
    torch.testing.assert_close(dw, dw_ref, rtol=1e-5, atol=1e-4)


def test_non_contiguous_input_is_copied():
    x = torch.randn(16, 6, device=DEV).t()  # (6, 16), non-contiguous
    w = torch.randn(16, device=DEV)
    torch.testing.assert_close(rn.rms_norm(x, w), rn.reference(x, w), rtol=1e-5, atol=1e-5)


def test_poison_detects_an_unwritten_row():
    """Launch the forward over one row too few: the poisoned last row must stay NaN."""
    x, w = torch.randn(5, 40, device=DEV), torch.ones(40, device=DEV)
    with runtime.poison_outputs():
        y = runtime.new_output(x.shape, x.dtype, x.device)
        rstd = runtime.new_output((5,), torch.float32, x.device)
    rn._rms_norm_fwd_kernel[(5,)](x, x, w, y, y, rstd, 4, 40, 1e-6, HAS_RESIDUAL=False,
                                  BLOCK_ROWS=1, BLOCK=64)
    assert torch.isnan(y[4]).all() and torch.isnan(rstd[4])
    assert not torch.isnan(y[:4]).any()


def test_bad_inputs_raise_clear_errors():
    w = torch.ones(8, device=DEV)
    with pytest.raises(TypeError, match="supported: float32"):
        rn.rms_norm(torch.ones(2, 8, dtype=torch.float64, device=DEV), w.double())
    with pytest.raises(ValueError, match="weight's size 8"):
        rn.rms_norm(torch.ones(2, 9, device=DEV), w)
    with pytest.raises(ValueError, match="residual shape"):
        rn.add_rms_norm(torch.ones(2, 8, device=DEV), torch.ones(3, 8, device=DEV), w)
    with pytest.raises(ValueError, match="up to"):
        rn.rms_norm(torch.ones(1, rn.MAX_HIDDEN + 1, device=DEV),
                    torch.ones(rn.MAX_HIDDEN + 1, device=DEV))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(8, 512, 2048), (3, 77, 4000)])
def test_rms_norm_bf16_gpu(shape):
    x = leaf(*shape, dtype=torch.bfloat16)
    r = leaf(*shape, dtype=torch.bfloat16)
    w = leaf(shape[-1])
    y, h = rn.add_rms_norm(x, r, w)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, r, w), dy)
    h_ref = x.float() + r.float()
    y_ref = rn.reference(h_ref, w)
    refs = torch.autograd.grad(y_ref, (x, r, w), dy.float())
    torch.testing.assert_close(y.float(), y_ref, rtol=2e-2, atol=2e-2)
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=5e-2)
