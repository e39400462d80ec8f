"""RoPE Triton kernel (Q and K in one launch, GQA) vs its plain PyTorch ``reference`` (v3)."""
import pytest
import torch

from version1_baseline.model import RotaryEmbedding
from version3_triton import runtime
from version3_triton.kernels import rope

DEV = runtime.DEVICE


@pytest.mark.parametrize("bsz,seq,hq,hk,d,past", [
    (1, 1, 2, 2, 16, 0), (5, 17, 4, 2, 16, 3), (2, 129, 3, 1, 64, 0), (1, 9, 6, 3, 20, 100)])
def test_rope_forward_and_grads(bsz, seq, hq, hk, d, past):
    torch.manual_seed(0)
    q = torch.randn(bsz, seq, hq, d, device=DEV, requires_grad=True)
    k = torch.randn(bsz, seq, hk, d, device=DEV, requires_grad=True)
    cos, sin = RotaryEmbedding(d).to(DEV)(torch.arange(past, past + seq, device=DEV))
    with runtime.poison_outputs():
        qo, ko = rope.apply_rope(q, k, cos, sin)
        dq, dk = torch.randn_like(qo), torch.randn_like(ko)
        grads = torch.autograd.grad((qo, ko), (q, k), (dq, dk))
    q_ref, k_ref = rope.reference(q, k, cos, sin)
    refs = torch.autograd.grad((q_ref, k_ref), (q, k), (dq, dk))
    torch.testing.assert_close(qo, q_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ko, k_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradient_through_one_output_only():
    q = torch.randn(2, 5, 4, 16, device=DEV, requires_grad=True)
    k = torch.randn(2, 5, 2, 16, device=DEV, requires_grad=True)
    cos, sin = RotaryEmbedding(16).to(DEV)(torch.arange(5, device=DEV))
    qo, _ = rope.apply_rope(q, k, cos, sin)
    gq, gk = torch.autograd.grad(qo.sum(), (q, k))
    q_ref, _ = rope.reference(q, k, cos, sin)
    torch.testing.assert_close(gq, torch.autograd.grad(q_ref.sum(), q)[0])
    assert torch.count_nonzero(gk) == 0


def test_non_contiguous_q_is_copied():
    base = torch.randn(2, 4, 7, 16, device=DEV)
    q = base.transpose(1, 2)  # (2, 7, 4, 16), non-contiguous
    k = torch.randn(2, 7, 2, 16, device=DEV)
    cos, sin = RotaryEmbedding(16).to(DEV)(torch.arange(7, device=DEV))
    qo, ko = rope.apply_rope(q, k, cos, sin)
    q_ref, k_ref = rope.reference(q, k, cos, sin)
    torch.testing.assert_close(qo, q_ref)
    torch.testing.assert_close(ko, k_ref)


def test_bad_inputs_raise_clear_errors():
    q, k = torch.randn(1, 3, 2, 16, device=DEV), torch.randn(1, 3, 1, 16, device=DEV)
    cos, sin = RotaryEmbedding(16).to(DEV)(torch.arange(3, device=DEV))
    with pytest.raises(ValueError, match="cos/sin must have shape"):
        rope.apply_rope(q, k, cos[:2], sin[:2])
    with pytest.raises(ValueError, match="must agree"):
        rope.apply_rope(q, torch.randn(1, 4, 1, 16, device=DEV), cos, sin)
    with pytest.raises(ValueError, match="4-D"):
        rope.apply_rope(q[0], k, cos, sin)
    with pytest.raises(ValueError, match="even head_dim"):
        rope.apply_rope(q[..., :15], k[..., :15], cos[:, :15], sin[:, :15])


@pytest.mark.gpu
def test_rope_bf16_gpu():
    q = torch.randn(4, 512, 32, 64, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(4, 512, 8, 64, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    cos, sin = RotaryEmbedding(64).to(DEV)(torch.arange(512, device=DEV))
    qo, ko = rope.apply_rope(q, k, cos, sin)
    q_ref, k_ref = rope.reference(q.float(), k.float(), cos, sin)
    torch.testing.assert_close(qo.float(), q_ref, rtol=1.6e-2, atol=2e-2)
    torch.testing.assert_close(ko.float(), k_ref, rtol=1.6e-2, atol=2e-2)
