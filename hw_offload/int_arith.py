"""Bit-exact integer arithmetic of the vector unit, vectorized over numpy int64.

Each function is the twin of the SystemVerilog function or datapath of the same name in
rtl/accel_pkg.sv / rtl/vector_unit.sv; ISA.md states the formulas and the bounds that keep
every intermediate inside int64. golden.py executes instructions with these; quant.py uses
them for its float-vs-integer error analysis.
"""
from __future__ import annotations

import numpy as np

LN2_Q10 = 710        # round(ln 2 * 2^10)
EXP_B = 1385         # round(1.353 * 2^10)   I-BERT i-exp: exp(r) ~ 0.3585 (r + 1.353)^2 + 0.344
EXP_A = 367          # round(0.3585 * 2^10)
EXP_C = 11272        # round(0.344 * 2^15)
SIG_KNEE = 4096      # 4.0 in Q10
SILU_CLAMP = 1 << 20
LOGIT_FRAC_BITS = 10  # softmax logits and SiLU inputs are Q10
PROB_SCALE = 127      # softmax output: p * 127 as int8
Q15 = 1 << 15


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def rshift_round(v, s: int) -> np.ndarray:
    """round(v / 2^s), ties toward +inf (add half, arithmetic shift)."""
    v = i64(v)
    if s == 0:
        return v
    return (v + (1 << (s - 1))) >> s


def sat8(v) -> np.ndarray:
    return np.clip(i64(v), -128, 127).astype(np.int8)


def requant(v, m: int, s: int) -> np.ndarray:
    """int8 = sat8(round(v * m / 2^s)); m is an unsigned 16-bit multiplier, s <= 62."""
    return sat8(rshift_round(i64(v) * m, s))


def column_scale(x, mults, shift: int = 15) -> np.ndarray:
    """Per-column rescale of accumulator values: round(x[:, c] * mults[c] / 2^shift).

    x: (rows, cols) int32/int64, mults: (cols,) unsigned 16-bit -> (rows, cols) int64. Brings
    the columns of a GEMM with per-output-channel weight scales to one common scale.
    """
    return rshift_round(i64(x) * i64(mults)[None, :], shift)


def iexp_q15(d) -> np.ndarray:
    """exp(d / 2^10) in Q15 for d <= 0 (I-BERT i-exp: split off powers of two, 2nd-order poly)."""
    d = i64(d)
    q = (-d) // LN2_Q10
    r = d + q * LN2_Q10
    t = r + EXP_B
    e0 = ((t * t * EXP_A) >> 15) + EXP_C
    return np.where(q > 30, 0, e0 >> np.minimum(q, 30))


def sigmoid_q15(x) -> np.ndarray:
    """sigmoid(x / 2^10) in Q15: 1 - (min(|x|, 4) - 4)^2 / 32 for x >= 0, mirrored for x < 0."""
    x = i64(x)
    t = np.minimum(np.abs(x), SIG_KNEE) - SIG_KNEE
    h = Q15 - ((t * t) >> 10)
    return np.where(x < 0, Q15 - h, h)


def isqrt(v: int) -> int:
    """floor(sqrt(v)) for 0 <= v < 2^32 (the RTL's 16-step digit-by-digit root)."""
    import math
    return math.isqrt(int(v))


def udiv(num: int, den: int) -> int:
    """The RTL's 48-bit restoring divider: floor(num / den), and 0 when den == 0."""
    return 0 if den == 0 else int(num) // int(den)


# ---------------- per-row operations (rows x columns, int64 in, int8 out) ----------------

def softmax_rows(scores, mult: int, shift: int, q_off: int) -> np.ndarray:
    """Causal integer softmax. scores: (rows, cols) int32 -> (rows, cols) int8 in [0, 127].

    Column j of row r is visible when j <= r + q_off; hidden columns come out 0.
    """
    scores = i64(scores)
    rows, cols = scores.shape
    z = rshift_round(scores * mult, shift)
    visible = np.arange(cols)[None, :] <= (np.arange(rows)[:, None] + q_off)
    mx = np.where(visible, z, np.iinfo(np.int64).min).max(axis=1, keepdims=True)
    e = np.where(visible, iexp_q15(np.where(visible, z - mx, 0)), 0)
    total = e.sum(axis=1)
    recip = np.array([udiv(PROB_SCALE << 24, int(t) & 0xFFFFFFFF) for t in total], dtype=np.int64)
    p = np.minimum((e * recip[:, None] + (1 << 23)) >> 24, PROB_SCALE)
    return np.where(visible, p, 0).astype(np.int8)


def rmsnorm_rows(x, gamma, mult: int, shift: int) -> np.ndarray:
    """x: (rows, n) int8, gamma: (n,) int8 -> int8 = requant(x * gamma * 2^30 / rms_q8)."""
    x = i64(x)
    n = x.shape[1]
    out = np.empty(x.shape, dtype=np.int8)
    g = i64(gamma)
    for r in range(x.shape[0]):
        ss = int((x[r] * x[r]).sum())
        msq = udiv(ss << 16, n)
        root = max(isqrt(msq), 1)
        inv = udiv(1 << 30, root)
        out[r] = requant(x[r] * g * inv, mult, shift)
    return out


def rope_rows(x, cos_q14, sin_q14, head_dim: int, mult: int, shift: int) -> np.ndarray:
    """Rotate-half RoPE on one head block. x: (rows, N) int32 (only the first head_dim used),
    cos/sin: (rows, head_dim/2) int16 Q14 -> (rows, N) int8, zeros past head_dim."""
    x = i64(x)
    half = head_dim // 2
    c, s = i64(cos_q14), i64(sin_q14)
    lo, hi = x[:, :half], x[:, half:head_dim]
    y = np.zeros(x.shape, dtype=np.int64)
    y[:, :half] = lo * c - hi * s
    y[:, half:head_dim] = hi * c + lo * s
    out = requant(y, mult, shift)
    out[:, head_dim:] = 0
    return out


def silu_q10(g) -> np.ndarray:
    """SiLU on Q10 values (clamped to +-1024.0): round(g * sigmoid(g))."""
    g = np.clip(i64(g), -SILU_CLAMP, SILU_CLAMP)
    return rshift_round(g * sigmoid_q15(g), 15)


def swiglu(gate, up, mult_g: int, shift_g: int, mult: int, shift: int) -> np.ndarray:
    """int8 = requant(round(silu(round(gate*mg/2^sg)) * up / 2^10), mult, shift)."""
    g = rshift_round(i64(gate) * mult_g, shift_g)
    prod = rshift_round(silu_q10(g) * i64(up), 10)
    return requant(prod, mult, shift)


def resadd(a, b, mult_a: int, mult_b: int, shift: int, shift_b: int) -> np.ndarray:
    """int8 = sat8(round((a * ma + round(b * mb / 2^sb)) / 2^s)); a int8 (residual), b int32
    (accumulator). Each term keeps its own 16-bit multiplier precision."""
    return sat8(rshift_round(i64(a) * mult_a + rshift_round(i64(b) * mult_b, shift_b), shift))
