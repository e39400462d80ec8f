"""Quantization scheme of the accelerator: symmetric int8, static scales.

* Weights: int8, one scale per output channel (that row's absmax / 127), quantized once.
  The accelerator brings a GEMM's columns to one common scale, the matrix's largest channel
  scale, with a per-column 16-bit multiplier (``column_multipliers``; ISA.md "Column scales")
  applied where the accumulator is read, so every later rescale is per tensor.
* RMSNorm gains: int8, one scale per vector.
* Activations: int8, one scale per tensor, calibrated as absmax / 127 of the float block's
  intermediate on a calibration input (``calibrate.quantize_block``, which runs the torch block).
* Accumulators: int32 with scale s_a * s_w[c]; after the column scale s_a * max(s_w); every rescale is an integer multiply by a 16-bit
  multiplier and a rounding right shift (``multiplier``), exactly as int_arith.requant.

Numpy only: this module and compiler.py never import torch (tests/test_rtl_quant.py checks it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MULT_BITS = 16


def multiplier(real: float) -> tuple[int, int]:
    """(m, s) with m < 2^16 and m / 2^s ~= real, m as large as possible (most precision)."""
    if not real > 0 or not math.isfinite(real):
        raise ValueError(f"rescale factor must be positive and finite, got {real}")
    s = MULT_BITS - 1 - math.floor(math.log2(real))
    if s > 62:
        s = 62
    if s < 0:
        raise ValueError(f"rescale factor {real} >= 2^16 cannot be expressed with a 16-bit multiplier")
    m = round(real * (1 << s))
    if m >= 1 << MULT_BITS:
        m, s = m >> 1, s - 1
    if m == 0:
        raise ValueError(f"rescale factor {real} is below 2^-62 and would round to zero")
    return m, s


def pair_multiplier(real_a: float, real_b: float) -> tuple[int, int, int, int]:
    """(ma, mb, s, sb) for RESADD: y = (a*ma + round(b*mb / 2^sb)) / 2^s ~= a*real_a + b*real_b.

    Each factor gets its own full-precision multiplier; the b term is rounded into a's fixed
    point (sb = its extra shift), which costs at most 2^-s of an output LSB.
    """
    ma, sa = multiplier(real_a)
    mb, s_b = multiplier(real_b)
    if s_b < sa:  # b is the larger factor: express a at b's (coarser) shift instead
        ma, sa = round(real_a * (1 << s_b)), s_b
    return ma, mb, sa, s_b - sa


def require_finite(x, name: str) -> np.ndarray:
    """``x`` as float64, or ValueError naming ``name`` when it holds NaN or inf: int8 has no
    code for them, and rounding would turn them into ordinary numbers without a word."""
    a = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"cannot quantize {name}: {int(bad.sum())} of {a.size} values are NaN or "
                         f"inf (first at index {first}: {a[first]}); int8 has no code for them")
    return a


def scale_of(x, name: str = "tensor") -> float:
    """Symmetric int8 scale: absmax / 127 (a tiny floor keeps an all-zero tensor legal).
    Raises ValueError naming ``name`` if x holds NaN or inf."""
    return max(float(np.abs(require_finite(x, name)).max()), 1e-8) / 127.0


def quantize(x, scale, name: str = "tensor") -> np.ndarray:
    """float -> int8, round to nearest, saturate. ``scale``: a float or an array broadcasting
    against ``x`` (e.g. (out, 1) for one scale per output channel). Raises ValueError naming
    ``name`` if x holds NaN or inf, or if a scale is not positive and finite."""
    sc = np.asarray(scale, dtype=np.float64)
    if not (np.isfinite(sc).all() and (sc > 0).all()):
        raise ValueError(f"cannot quantize {name}: its scale must be positive and finite, got {scale}")
    return np.clip(np.rint(require_finite(x, name) / sc), -128, 127).astype(np.int8)


def channel_scales(w, name: str = "weight") -> np.ndarray:
    """Per-output-channel int8 scales of a weight [out, in]: each row's absmax / 127 (float64
    [out]; a tiny floor keeps an all-zero row legal). Raises ValueError naming ``name`` if w
    holds NaN or inf."""
    absmax = np.abs(require_finite(w, name)).max(axis=1)
    return np.maximum(absmax, 1e-8) / 127.0


def column_multipliers(scales: np.ndarray, reference: float) -> np.ndarray:
    """uint16 multipliers m_c = round(scales[c] / reference * 2^15) for the accelerator's
    column scale (isa.CS_SHIFT = 15). ``reference`` is the largest channel scale, so every
    factor is <= 1 and m_c <= 2^15 fits 16 bits."""
    from .isa import CS_SHIFT
    ratio = np.asarray(scales, dtype=np.float64) / reference
    if ratio.max() > 1.0 + 1e-12:
        raise ValueError("the reference scale must be the largest channel scale")
    return np.rint(ratio * (1 << CS_SHIFT)).astype(np.uint16)


def rope_q14(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin tables (len(positions), head_dim/2) as int16 Q14, same frequencies as v1."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    ang = positions[:, None].astype(np.float64) * inv_freq[None, :]
    return (np.rint(np.cos(ang) * 16384).astype(np.int16),
            np.rint(np.sin(ang) * 16384).astype(np.int16))


@dataclass
class QuantizedBlock:
    """One decoder block in int8 + scales. Weight matrices keep the HF [out, in] shape."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    rope_theta: float
    weights: dict[str, np.ndarray]        # q,k,v,o,gate,up,down: int8 [out, in]
    weight_scales: dict[str, float]       # per matrix: the largest channel scale (reference)
    channel_scales: dict[str, np.ndarray]  # per matrix: float64 [out], one scale per output row
    gammas: dict[str, np.ndarray]         # input_norm, post_norm: int8 [hidden]
    gamma_scales: dict[str, float]
    act_scales: dict[str, float] = field(default_factory=dict)  # calibrate.quantize_block
