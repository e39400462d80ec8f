"""Projection + residual-add epilogue (v4's O and down projections) vs its plain PyTorch ``reference``."""
import pytest
import torch

from version3_triton import runtime
from version4_ultra.kernels.linear_residual import linear_residual, reference

DEV = runtime.DEVICE


def leaf(*shape):
    return torch.randn(*shape, device=DEV).requires_grad_()


@pytest.mark.parametrize("lead,k,n", [((1,), 16, 16), ((2, 9), 37, 23), ((3, 50), 16, 130),
                                      ((70,), 48, 33)])
def test_forward_and_gradients_match_pytorch(lead, k, n):
    torch.manual_seed(0)
    a, w, r = leaf(*lead, k), leaf(n, k), leaf(*lead, n)
    runtime.CALLS.clear()
    with runtime.poison_outputs():
        out = linear_residual(a, w, r, name="down_residual")
        dout = torch.randn_like(out)
        grads = torch.autograd.grad(out, (a, w, r), dout)
    assert runtime.CALLS["down_residual_fwd"] == 1
    ref = reference(a, w, r)
    refs = torch.autograd.grad(ref, (a, w, r), dout)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_output_takes_the_promoted_dtype_of_a_and_residual():
    a, w = torch.randn(4, 16, device=DEV), torch.randn(16, 16, device=DEV)
    r = torch.randn(4, 16, device=DEV, dtype=torch.float64).float()
    assert linear_residual(a, w, r).dtype == torch.float32
    if runtime.INTERPRET:
        return  # half precision tl.dot is GPU-only
    out = linear_residual(a, w, r, compute_dtype=torch.bfloat16)  # fp32 weights, bf16 GEMM
    assert out.dtype == torch.float32


def test_bad_shapes_are_rejected():
    a, w = torch.randn(4, 16, device=DEV), torch.randn(8, 16, device=DEV)
    with pytest.raises(ValueError, match="must end in w's in-features"):
        linear_residual(torch.randn(4, 15, device=DEV), w, torch.randn(4, 8, device=DEV))
    with pytest.raises(ValueError, match="residual shape"):
        linear_residual(a, w, torch.randn(4, 9, device=DEV))
    with pytest.raises(TypeError, match="dtype"):
        linear_residual(a.long(), w, torch.randn(4, 8, device=DEV))


@pytest.mark.gpu
def test_bf16_close_to_fp32_gpu():
    torch.manual_seed(1)
    a, w, r = torch.randn(300, 256, device=DEV), torch.randn(512, 256, device=DEV) * 0.05, \
        torch.randn(300, 512, device=DEV)
    got = linear_residual(a.bfloat16(), w.bfloat16(), r)
    torch.testing.assert_close(got, reference(a, w, r), rtol=3e-2, atol=3e-2)
