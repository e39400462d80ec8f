"""Per unit: the integer arithmetic (golden's, int_arith.py) against float PyTorch.

Bounds are the documented quantization errors of ISA.md ("Accuracy"), measured with these
generators; LSB means one step of the op's int8 output scale.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hw_offload import int_arith as ia
from hw_offload.isa import CS_SHIFT
from hw_offload.calibrate import quantize_block
from hw_offload.quant import (channel_scales, column_multipliers, multiplier, pair_multiplier,
                              quantize, rope_q14, scale_of)
from hw_offload.testing import seeds
from version1_baseline.model import RMSNorm, apply_rotary, RotaryEmbedding

pytestmark = pytest.mark.rtl


def lsb_error(got_q, scale, ref):
    return float(np.abs(got_q.astype(np.float64) * scale - ref).max() / scale)


@pytest.mark.parametrize("seed", seeds(3))
def test_requant_within_half_lsb(seed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-2**24, 2**24, 4096)
    s_acc = 1e-5
    ref = acc * s_acc
    s_out = scale_of(ref)
    m, s = multiplier(s_acc / s_out)
    err = lsb_error(ia.requant(acc, m, s), s_out, ref)
    assert err <= 0.5 + 1e-3, f"requant error {err:.4f} LSB"


@pytest.mark.parametrize("seed", seeds(3))
def test_weights_are_quantized_per_output_channel(seed):
    """Every row uses its own full int8 range, so dequantization error is half a step of
    that row's scale, however small the row is next to the largest one."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (37, 19)) * np.exp(2 * rng.normal(size=(37, 1)))   # rows differ ~100x
    sc = channel_scales(w)
    w_q = quantize(w, sc[:, None])
    np.testing.assert_array_equal(np.abs(w_q.astype(np.int64)).max(axis=1), 127)
    assert np.all(np.abs(w_q * sc[:, None] - w) <= sc[:, None] / 2 + 1e-12)


@pytest.mark.parametrize("seed", seeds(3))
def test_per_channel_gemm_with_column_scale_within_0p6_lsb(seed):
    """int8 GEMM with per-row weight scales, then the accelerator's column scale and REQ,
    against the float product of the same int8 values: <= 0.5 LSB of requant plus the
    column multipliers' rounding (rows here are at least 1/20 of the largest)."""
    rng = np.random.default_rng(seed)
    m, k, n = 23, 48, 40
    x = rng.normal(0, 1, (m, k))
    w = rng.normal(0, 1, (n, k)) * np.exp(rng.uniform(np.log(0.05), 0, (n, 1)))
    s_x, sc = scale_of(x), channel_scales(w)
    x_q, w_q = quantize(x, s_x), quantize(w, sc[:, None])
    ref = (torch.tensor(x_q * s_x) @ torch.tensor(w_q * sc[:, None]).T).numpy()
    acc = x_q.astype(np.int64) @ w_q.astype(np.int64).T
    s_ref, s_out = float(sc.max()), scale_of(ref)
    common = ia.column_scale(acc, column_multipliers(sc, s_ref), CS_SHIFT)
    mult, shift = multiplier(s_x * s_ref / s_out)
    err = lsb_error(ia.requant(common, mult, shift), s_out, ref)
    assert err <= 0.6, f"per-channel GEMM + column scale error {err:.4f} LSB"


@pytest.mark.parametrize("seed", seeds(3))
def test_rmsnorm_within_one_lsb(seed):
    rng = np.random.default_rng(seed)
    n = 64
    x = rng.normal(0, 1, (16, n))
    s_x = scale_of(x)
    x_q = quantize(x, s_x)
    gamma = 1 + 0.1 * rng.normal(size=n)
    s_g = scale_of(gamma)
    g_q = quantize(gamma, s_g)
    norm = RMSNorm(n, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor(g_q * s_g))
        ref = norm(torch.tensor(x_q * s_x, dtype=torch.float32)).double().numpy()
    s_y = scale_of(ref)
    m, s = multiplier(s_g / (s_y * 2.0 ** 22))
    err = lsb_error(ia.rmsnorm_rows(x_q, g_q, m, s), s_y, ref)
    assert err <= 1.0, f"rmsnorm error {err:.4f} LSB"


@pytest.mark.parametrize("seed", seeds(3))
@pytest.mark.parametrize("head_dim", [8, 16])
def test_rope_within_one_lsb(seed, head_dim):
    rng = np.random.default_rng(seed)
    s_len = 32
    acc = rng.integers(-2**15, 2**15, (s_len, head_dim))
    s_acc = 1e-4
    cos_f, sin_f = RotaryEmbedding(head_dim)(torch.arange(s_len))
    ref = apply_rotary(torch.tensor(acc * s_acc)[None, None], cos_f.double(), sin_f.double())[0, 0].numpy()
    s_y = scale_of(ref)
    m, s = multiplier(s_acc / (s_y * 2.0 ** 14))
    cos_q, sin_q = rope_q14(np.arange(s_len), head_dim, 10000.0)
    padded = np.zeros((s_len, 16), dtype=np.int64)
    padded[:, :head_dim] = acc
    got = ia.rope_rows(padded, cos_q, sin_q, head_dim, m, s)
    assert (got[:, head_dim:] == 0).all()
    err = lsb_error(got[:, :head_dim], s_y, ref)
    assert err <= 1.0, f"rope error {err:.4f} LSB"


@pytest.mark.parametrize("seed", seeds(3))
def test_causal_softmax_probabilities_within_0p012(seed):
    rng = np.random.default_rng(seed)
    rows, cols = 32, 32
    logits = rng.normal(0, 3, (rows, cols))
    s_acc = 1e-3
    scores = np.rint(logits / s_acc).astype(np.int64)
    m, s = multiplier(s_acc * 2.0 ** 10)
    p_q = ia.softmax_rows(scores, m, s, q_off=0)
    mask = np.triu(np.ones((rows, cols), dtype=bool), 1)
    ref = torch.softmax(torch.tensor(scores * s_acc).masked_fill(torch.tensor(mask), -math.inf), -1).numpy()
    err = float(np.abs(p_q / 127.0 - ref).max())
    assert (p_q[mask] == 0).all()
    assert err <= 0.012, f"softmax probability error {err:.4f}"


@pytest.mark.parametrize("seed", seeds(3))
def test_swiglu_within_documented_error(seed):
    """SiLU uses a shift-only sigmoid (max abs sigmoid error 0.0183 at |x| ~ 1.6 and 4), so the
    bound is 2 LSB + 0.02 * |gate * up| relative to the output scale."""
    rng = np.random.default_rng(seed)
    g = rng.normal(0, 2, 4096)
    u = rng.normal(0, 2, 4096)
    s_acc = 1e-4
    g_acc, u_acc = np.rint(g / s_acc), np.rint(u / s_acc)
    ref = (F.silu(torch.tensor(g_acc * s_acc)) * torch.tensor(u_acc * s_acc)).numpy()
    s_y = scale_of(ref)
    mg, sg = multiplier(s_acc * 2.0 ** 10)
    m, s = multiplier(s_acc / s_y)
    got = ia.swiglu(g_acc, u_acc, mg, sg, m, s).astype(np.float64) * s_y
    bound = 2 * s_y + 0.02 * np.abs(g_acc * s_acc * u_acc * s_acc)
    worst = float(((np.abs(got - ref)) / bound).max())
    assert worst <= 1.0, f"swiglu error exceeds its bound by x{worst:.3f}"
    assert np.corrcoef(got, ref)[0, 1] >= 0.999


@pytest.mark.parametrize("seed", seeds(3))
def test_residual_add_within_half_lsb_plus_multiplier_rounding(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, 4096)
    b = rng.normal(0, 0.5, 4096)
    s_a = scale_of(a)
    a_q = quantize(a, s_a)
    s_b = 1e-5
    b_acc = np.rint(b / s_b)
    ref = a_q * s_a + b_acc * s_b
    s_y = scale_of(ref)
    ma, mb, s, sb = pair_multiplier(s_a / s_y, s_b / s_y)
    err = lsb_error(ia.resadd(a_q, b_acc, ma, mb, s, sb), s_y, ref)
    assert err <= 0.51, f"residual add error {err:.4f} LSB"


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantize_block_weight_scales_and_column_tables(per_channel):
    """Per channel: each row's own scale, tables carry their ratios. Per matrix (the baseline
    of benchmarks/hw/bench_quant.py): one scale per matrix, every multiplier exactly 1.0."""
    from hw_offload.compiler import layout_weights
    from hw_offload.isa import HwConfig
    from hw_offload.testing import make_block
    from version1_baseline import get_preset
    cfg = get_preset("chip16")
    layer, cos, sin, calib, _ = make_block(cfg, 3, channel_spread=1.0)
    qb = quantize_block(layer, cfg, calib, cos, sin, per_channel=per_channel)
    wl = layout_weights(qb, HwConfig(), cfg.max_seq_len)
    for name, lin in (("gate", layer.mlp.gate_proj), ("down", layer.mlp.down_proj)):
        w = lin.weight.detach().double().numpy()
        want = channel_scales(w) if per_channel else np.full(w.shape[0], scale_of(w))
        np.testing.assert_allclose(qb.channel_scales[name], want, rtol=1e-12)
        table = wl.image[(wl.at[f"cs_{name}"] - wl.base) * 16:][:2 * w.shape[0]].view(np.uint16)
        np.testing.assert_array_equal(table, column_multipliers(want, want.max()))
        assert (table == 2**15).all() != per_channel
