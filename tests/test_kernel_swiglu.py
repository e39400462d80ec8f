"""SwiGLU Triton kernel vs its plain PyTorch ``reference``, silu(gate) * up (v3)."""
import pytest
import torch

from version3_triton import runtime
from version3_triton.kernels import swiglu as sw

DEV = runtime.DEVICE


@pytest.mark.parametrize("shape", [(1,), (5, 17, 123), (2, 1025), (3, 7, 45)])
def test_swiglu_forward_and_grads(shape):
    torch.manual_seed(0)
    g = (3 * torch.randn(*shape, device=DEV)).requires_grad_()  # wide range: both tails
    u = torch.randn(*shape, device=DEV).requires_grad_()
    with runtime.poison_outputs():
        y = sw.swiglu(g, u)
        dy = torch.randn_like(y)
        dg, du = torch.autograd.grad(y, (g, u), dy)
    y_ref = sw.reference(g, u)
    dg_ref, du_ref = torch.autograd.grad(y_ref, (g, u), dy)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dg, dg_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(du, du_ref, rtol=1e-5, atol=1e-6)


# sigmoid(-1e4) = 1 / (1 + exp(1e4)): the interpreter's numpy warns on the inf; the result is 0.
@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
def test_extreme_gate_values_stay_finite():
    g = torch.tensor([-1e4, -80.0, 0.0, 80.0, 1e4], device=DEV, requires_grad=True)
    u = torch.ones(5, device=DEV, requires_grad=True)
    y = sw.swiglu(g, u)
    dg, du = torch.autograd.grad(y.sum(), (g, u))
    assert torch.isfinite(y).all() and torch.isfinite(dg).all() and torch.isfinite(du).all()
    torch.testing.assert_close(y, sw.reference(g, u))


def test_non_contiguous_inputs_are_copied():
    g = torch.randn(40, 6, device=DEV).t()
    u = torch.randn(40, 6, device=DEV).t()
    torch.testing.assert_close(sw.swiglu(g, u), sw.reference(g, u))


def test_poison_detects_an_unwritten_element():
    """A mask that stops one element short must leave that element NaN."""
    g, u = torch.randn(100, device=DEV), torch.randn(100, device=DEV)
    with runtime.poison_outputs():
        y = runtime.new_output(g.shape, g.dtype, g.device)
    sw._swiglu_fwd_kernel[(1,)](g, u, y, 99, BLOCK=128)  # n - 1: the broken mask
    assert torch.isnan(y[99])
    torch.testing.assert_close(y[:99], sw.reference(g, u)[:99])


def test_bad_inputs_raise_clear_errors():
    a = torch.ones(4, device=DEV)
    with pytest.raises(ValueError, match="same shape and dtype"):
        sw.swiglu(a, torch.ones(5, device=DEV))
    with pytest.raises(TypeError, match="supported"):
        sw.swiglu(a.long(), a.long())
    with pytest.raises(TypeError, match="torch.Tensor"):
        sw.swiglu([1.0], a)


@pytest.mark.gpu
def test_swiglu_bf16_gpu():
    g = torch.randn(8, 512, 5632, device=DEV, dtype=torch.bfloat16).requires_grad_()
    u = torch.randn_like(g).requires_grad_()
    y = sw.swiglu(g, u)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (g, u), dy)
    gf, uf = g.float().detach().requires_grad_(), u.float().detach().requires_grad_()
    y_ref = sw.reference(gf, uf)
    refs = torch.autograd.grad(y_ref, (gf, uf), dy.float())
    torch.testing.assert_close(y.float(), y_ref, rtol=1.6e-2, atol=1e-2)
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got.float(), want, rtol=1.6e-2, atol=1e-2)
