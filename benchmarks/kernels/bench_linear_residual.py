"""v4's projection + residual-add epilogue ``residual + a @ w^T``, forward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.linear_residual``. Forward only: the
backward is torch GEMMs. The shapes are TinyLlama's O projection (2048 -> 2048) and down
projection (5632 -> 2048) at prefill.
"""
import torch

from benchmarks.kernels import (ceilings, compiled, parser, report, require_gpu, run_forward,
                                torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version4_ultra.kernels.linear_residual import linear_residual, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, k, n in ((4096, 2048, 2048), (4096, 5632, 2048)):
        a = torch.randn(tokens, k, device=device, dtype=dtype)
        w = torch.randn(n, k, device=device, dtype=dtype) * k ** -0.5
        r = torch.randn(tokens, n, device=device, dtype=dtype)
        impls = {"triton": linear_residual, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_forward(impls, f"{tokens}x{k}->{n} {args.dtype}",
                    work.linear_residual(tokens, k, n, a.element_size()),
                    lambda fn: fn(a, w, r), rows)
    report("linear_residual", rows, ceil, args.json)


if __name__ == "__main__":
    main()
