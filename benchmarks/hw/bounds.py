"""Measured error bounds of the accelerator's integer approximations (ISA.md quotes these).

    python -m benchmarks.hw.bounds

Sigmoid: every Q10 input in [-16, 16] (all 32769 codes; beyond |x| = 4 the approximation is
flat at 0 / 1) against the float sigmoid of the same input. Exp: every Q10 input d in
[-16, 0] against exp(d). Prints the maximum absolute error and where it occurs.
"""
from __future__ import annotations

import numpy as np

from hw_offload import int_arith as ia


def sigmoid_error() -> tuple[float, float]:
    """-> (max |sigmoid_q15(x)/2^15 - sigmoid(x)|, the x where it occurs)."""
    q = np.arange(-16 * 1024, 16 * 1024 + 1, dtype=np.int64)
    x = q / 1024.0
    err = np.abs(ia.sigmoid_q15(q) / 2.0**15 - 1 / (1 + np.exp(-x)))
    k = int(np.argmax(err))
    return float(err[k]), float(x[k])


def exp_error() -> tuple[float, float]:
    """-> (max |iexp_q15(d)/2^15 - exp(d)|, the d where it occurs)."""
    q = np.arange(-16 * 1024, 1, dtype=np.int64)
    d = q / 1024.0
    err = np.abs(ia.iexp_q15(q) / 2.0**15 - np.exp(d))
    k = int(np.argmax(err))
    return float(err[k]), float(d[k])


def main() -> None:
    e, x = sigmoid_error()
    print(f"sigmoid (Q10 in, Q15 out): max abs error {e:.4f} at x = {x:.3f}")
    e, d = exp_error()
    print(f"exp (I-BERT i-exp, Q10 in, Q15 out): max abs error {e:.5f} at d = {d:.3f}")


if __name__ == "__main__":
    main()
