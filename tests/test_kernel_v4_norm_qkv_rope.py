"""Fused RMSNorm + QKV projection + RoPE (v4) vs its plain PyTorch ``reference``: forward and every gradient.

Runs in the Triton interpreter on CPU tensors where there is no GPU.
"""
import pytest
import torch

from version1_baseline.model import RotaryEmbedding
from version3_triton import runtime
from version4_ultra.kernels.norm_qkv_rope import norm_qkv_rope, reference

DEV = runtime.DEVICE


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape, device=DEV) * scale).requires_grad_()


@pytest.mark.parametrize("bsz,seq,hidden,n_q,n_kv,d", [
    (1, 1, 16, 1, 1, 16),       # one token, one head of each kind
    (2, 7, 40, 4, 2, 16),       # rows and K not multiples of the tiles, GQA 2:1
    (1, 19, 33, 3, 1, 32),      # odd hidden, 3 query heads per kv head, D/2 = 16
    (3, 5, 24, 2, 2, 20),       # head_dim 20: half (10) is padded inside the kernel
])
def test_forward_and_gradients_match_pytorch(bsz, seq, hidden, n_q, n_kv, d):
    torch.manual_seed(0)
    x = leaf(bsz, seq, hidden)
    norm_w = (1 + 0.1 * torch.randn(hidden, device=DEV)).requires_grad_()
    wq, wk, wv = leaf(n_q * d, hidden, scale=0.2), leaf(n_kv * d, hidden, scale=0.2), \
        leaf(n_kv * d, hidden, scale=0.2)
    cos, sin = RotaryEmbedding(d).to(DEV)(torch.arange(3, 3 + seq, device=DEV))
    inputs = (x, norm_w, wq, wk, wv)
    runtime.CALLS.clear()
    with runtime.poison_outputs():
        out = norm_qkv_rope(*inputs, cos, sin, 1e-5)
        dout = torch.randn_like(out)
        grads = torch.autograd.grad(out, inputs, dout)
    assert runtime.CALLS["norm_qkv_rope_fwd"] == 1
    assert runtime.CALLS["rope_bwd"] == 1 and runtime.CALLS["rms_norm_bwd"] == 1
    ref = reference(*inputs, cos, sin, 1e-5)
    refs = torch.autograd.grad(ref, inputs, dout)
    assert out.shape == (bsz, seq, n_q + 2 * n_kv, d)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(("x", "norm_w", "wq", "wk", "wv"), grads, refs):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4,
                                   msg=lambda m, name=name: f"d{name}: {m}")


def test_rope_is_applied_to_q_and_k_but_not_v():
    # With cos = 1, sin = 0 the rotation is the identity: a different table must change
    # exactly the q and k heads. Catches an epilogue that rotates v or skips k.
    torch.manual_seed(1)
    x, norm_w = torch.randn(1, 3, 32, device=DEV), torch.ones(32, device=DEV)
    wq, wk, wv = (torch.randn(16, 32, device=DEV) for _ in range(3))
    ones, zeros = torch.ones(3, 16, device=DEV), torch.zeros(3, 16, device=DEV)
    cos, sin = RotaryEmbedding(16).to(DEV)(torch.arange(5, 8, device=DEV))
    plain = norm_qkv_rope(x, norm_w, wq, wk, wv, ones, zeros)
    rotated = norm_qkv_rope(x, norm_w, wq, wk, wv, cos, sin)
    assert not torch.allclose(plain[:, :, 0], rotated[:, :, 0])
    assert not torch.allclose(plain[:, :, 1], rotated[:, :, 1])
    torch.testing.assert_close(plain[:, :, 2], rotated[:, :, 2], rtol=0, atol=0)


def test_bad_inputs_are_rejected_with_clear_errors():
    x, nw = torch.randn(1, 2, 32, device=DEV), torch.ones(32, device=DEV)
    w = torch.randn(16, 32, device=DEV)
    cos, sin = torch.ones(2, 16, device=DEV), torch.zeros(2, 16, device=DEV)
    with pytest.raises(ValueError, match="must match"):
        norm_qkv_rope(x, torch.ones(31, device=DEV), w, w, w, cos, sin)
    with pytest.raises(ValueError, match="cos/sin must have shape"):
        norm_qkv_rope(x, nw, w, w, w, cos[:1], sin[:1])
    with pytest.raises(TypeError, match="share one dtype"):
        norm_qkv_rope(x, nw, w, w.double().float().half(), w, cos, sin)
    with pytest.raises(ValueError, match="whole heads"):
        norm_qkv_rope(x, nw, torch.randn(24, 32, device=DEV), w, w, cos, sin)


@pytest.mark.gpu
def test_bf16_close_to_fp32_reference_gpu():
    torch.manual_seed(2)
    x = torch.randn(4, 128, 256, device=DEV)
    nw = torch.ones(256, device=DEV)
    wq, wk, wv = (torch.randn(n * 64, 256, device=DEV) * 0.05 for n in (4, 2, 2))
    cos, sin = RotaryEmbedding(64).to(DEV)(torch.arange(128, device=DEV))
    got = norm_qkv_rope(x, nw, wq.bfloat16(), wk.bfloat16(), wv.bfloat16(), cos, sin)
    ref = reference(x, nw, wq, wk, wv, cos, sin, 1e-6)
    torch.testing.assert_close(got.float(), ref, rtol=3e-2, atol=3e-2)
