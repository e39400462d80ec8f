"""Decode attention (one query against the KV cache) vs explicit attention (v3)."""
import pytest
import torch

from version3_triton import runtime
from version3_triton.kernels import decode_attention as da

DEV = runtime.DEVICE


@pytest.mark.parametrize("bsz,heads,kv_heads,d,cap,length", [
    (1, 2, 2, 16, 8, 1), (5, 4, 2, 16, 40, 17), (2, 8, 1, 64, 160, 129), (1, 6, 3, 24, 20, 20)])
def test_decode_matches_reference(bsz, heads, kv_heads, d, cap, length):
    torch.manual_seed(length)
    q = torch.randn(bsz, heads, d, device=DEV)
    k = torch.randn(bsz, kv_heads, cap, d, device=DEV)
    v = torch.randn(bsz, kv_heads, cap, d, device=DEV)
    k[:, :, length:] = float("nan")  # positions past `length` must never be read into the result
    v[:, :, length:] = float("nan")
    with runtime.poison_outputs():
        out = da.decode_attention(q, k, v, length)
    torch.testing.assert_close(out, da.reference(q, k, v, length), rtol=2e-5, atol=2e-5)


def test_bad_inputs_raise_clear_errors():
    q, cache = torch.randn(1, 2, 16, device=DEV), torch.randn(1, 1, 4, 16, device=DEV)
    with pytest.raises(ValueError, match=r"length must be in \[1, 4\]"):
        da.decode_attention(q, cache, cache, 5)
    with pytest.raises(ValueError, match="head_dim 16..128"):
        da.decode_attention(q[..., :8], cache[..., :8], cache[..., :8], 2)
    with pytest.raises(RuntimeError, match="no backward"):
        da.decode_attention(q.requires_grad_(), cache, cache, 2)


@pytest.mark.gpu
def test_decode_bf16_gpu():
    q = torch.randn(8, 32, 128, device=DEV, dtype=torch.bfloat16)
    k = torch.randn(8, 8, 2048, 128, device=DEV, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    out = da.decode_attention(q, k, v, 1500)
    ref = da.reference(q.float(), k.float(), v.float(), 1500)
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
