"""Fused RMSNorm + gate/up projection + SwiGLU (v4) vs its plain PyTorch ``reference``: forward and gradients."""
import pytest
import torch

from version3_triton import runtime
from version4_ultra.kernels.norm_gate_up_swiglu import norm_gate_up_swiglu, reference

DEV = runtime.DEVICE


@pytest.mark.parametrize("lead,k,n", [((1, 1), 16, 16), ((2, 9), 40, 88), ((37,), 23, 45)])
def test_forward_and_gradients_match_pytorch(lead, k, n):
    torch.manual_seed(0)
    x = torch.randn(*lead, k, device=DEV).requires_grad_()
    norm_w = (1 + 0.1 * torch.randn(k, device=DEV)).requires_grad_()
    wg = (0.3 * torch.randn(n, k, device=DEV)).requires_grad_()
    wu = (0.3 * torch.randn(n, k, device=DEV)).requires_grad_()
    inputs = (x, norm_w, wg, wu)
    runtime.CALLS.clear()
    with runtime.poison_outputs():
        y = norm_gate_up_swiglu(*inputs, eps=1e-5)
        dy = torch.randn_like(y)
        grads = torch.autograd.grad(y, inputs, dy)
    assert runtime.CALLS["norm_gate_up_swiglu_fwd"] == 1
    assert runtime.CALLS["swiglu_bwd"] == 1 and runtime.CALLS["rms_norm_bwd"] == 1
    ref = reference(*inputs, 1e-5)
    refs = torch.autograd.grad(ref, inputs, dy)
    assert y.shape == (*lead, n)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(("x", "norm_w", "wg", "wu"), grads, refs):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4,
                                   msg=lambda m, name=name: f"d{name}: {m}")


def test_bad_inputs_are_rejected():
    x, nw = torch.randn(2, 16, device=DEV), torch.ones(16, device=DEV)
    w = torch.randn(8, 16, device=DEV)
    with pytest.raises(ValueError, match="must match"):
        norm_gate_up_swiglu(x, nw, w, torch.randn(9, 16, device=DEV))
    with pytest.raises(ValueError, match="eps must be positive"):
        norm_gate_up_swiglu(x, nw, w, w, eps=0)
    with pytest.raises(ValueError, match="empty"):
        norm_gate_up_swiglu(torch.randn(0, 16, device=DEV), nw, w, w)


@pytest.mark.gpu
def test_bf16_close_to_fp32_gpu():
    torch.manual_seed(1)
    x, nw = torch.randn(4, 128, 256, device=DEV), torch.ones(256, device=DEV)
    wg, wu = (torch.randn(704, 256, device=DEV) * 0.05 for _ in range(2))
    got = norm_gate_up_swiglu(x, nw, wg.bfloat16(), wu.bfloat16())
    torch.testing.assert_close(got.float(), reference(x, nw, wg, wu, 1e-6), rtol=3e-2, atol=3e-2)
