"""The two constants of a softmax computed in base 2 (not a kernel itself).

The attention kernels exponentiate with ``exp2`` (one hardware instruction; ``exp`` is
``exp2`` after a multiply) by folding ``log2(e)`` into the score scale, and turn a base-2
log-sum-exp back into natural-log units with ``ln(2)``. ``tl.constexpr`` so that
``@triton.jit`` functions of any file can read them as globals.
"""
import math

import triton.language as tl

LOG2E = tl.constexpr(1.0 / math.log(2.0))   # log2(e) = 1.4426950408889634
LN2 = tl.constexpr(math.log(2.0))           # ln(2) = 0.6931471805599453
