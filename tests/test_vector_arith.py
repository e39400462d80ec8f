"""The vector unit's narrow arithmetic is exact where rtl/accel_pkg.sv says it is (no Verilator).

* i-exp's ``floor(nd / 710)`` is a multiply by EXP_RECIP and a shift by EXP_RECIP_SHIFT in the
  RTL; that is exact for every nd below EXP_ND_MAX (above it the result is 0 anyway), and the
  product fits the 29 bits the RTL computes it in.
* The divider starts with the numerator's top 16 bits as its remainder (32 quotient bits,
  2 per cycle); that is exact because every quotient the unit asks for is below 2^32.
The constants are read from the package, so a change there is checked here.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from hw_offload import int_arith as ia

PKG = Path(ia.__file__).resolve().parent / "rtl" / "accel_pkg.sv"


def _pkg_int(name: str) -> int:
    m = re.search(rf"localparam\s+int\s+{name}\s*=\s*(\d+)\s*;", PKG.read_text())
    assert m, f"{name} not declared as a localparam int in {PKG.name}"
    return int(m.group(1))


def test_iexp_constant_divide_is_exact_over_its_whole_range():
    recip, shift, nd_max = _pkg_int("EXP_RECIP"), _pkg_int("EXP_RECIP_SHIFT"), _pkg_int("EXP_ND_MAX")
    assert _pkg_int("LN2_Q10") == ia.LN2_Q10
    # nd_max is the first nd whose quotient exceeds 30 (the golden model's "q > 30 -> 0")
    assert nd_max == 31 * ia.LN2_Q10 and (nd_max - 1) // ia.LN2_Q10 == 30
    nd = np.arange(nd_max, dtype=np.int64)
    assert np.array_equal((nd * recip) >> shift, nd // ia.LN2_Q10)
    assert int(nd[-1]) * recip < 2**29          # the RTL's 29-bit product
    assert nd_max < 2**15                       # nd enters as 15 bits


def test_iexp_is_zero_from_nd_max_on():
    nd_max = _pkg_int("EXP_ND_MAX")
    d = -np.arange(nd_max - 3, nd_max + 3000, dtype=np.int64)
    e = ia.iexp_q15(d)
    assert np.all(e[d <= -nd_max] == 0) and np.all(e[d > -nd_max] >= 0)


def _divide_2bits(num: int, den: int) -> int:
    """The RTL's divider: remainder starts as num >> 32, then 16 cycles of 2 restoring steps."""
    rem, q = num >> 32, 0
    for bit in range(31, -1, -1):
        rem = (rem << 1) | ((num >> bit) & 1)
        q <<= 1
        if rem >= den:
            rem -= den
            q |= 1
    return 0 if den == 0 else q


def _isqrt_2steps(v: int) -> int:
    """The RTL's digit-by-digit root, 16 steps (two per cycle) from one = 2^30."""
    res, one = 0, 1 << 30
    for _ in range(16):
        if v >= res + one:
            v -= res + one
            res = (res >> 1) + one
        else:
            res >>= 1
        one >>= 2
    return res


def test_divider_and_root_are_exact_for_every_quotient_the_unit_asks_for():
    rng = np.random.default_rng(0)
    # RMS: ss <= n * 2^14 (int8 squares), so (ss << 16) / n <= 2^30; then 2^30 / root
    for n in (4, 16, 4080, 255 * 64):
        for ss in [0, 1, n * 2**14, n * 2**14 - 1] + [int(x) for x in rng.integers(0, n * 2**14, 200)]:
            msq = _divide_2bits(ss << 16, n)
            assert msq == (ss << 16) // n <= 2**30
            root = max(_isqrt_2steps(msq), 1)
            assert root == max(math.isqrt(msq), 1)
            assert _divide_2bits(1 << 30, root) == (1 << 30) // root
    # SMAX: 127 * 2^24 / sum, sum >= 1 (column 0 is always visible), and x / 0 = 0
    for s in [1, 2, 3, 2**31 - 1] + [int(x) for x in rng.integers(1, 2**31, 500)]:
        assert _divide_2bits(127 << 24, s) == ia.udiv(127 << 24, s)
    assert _divide_2bits(127 << 24, 0) == ia.udiv(127 << 24, 0) == 0
