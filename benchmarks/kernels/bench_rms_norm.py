"""RMSNorm forward / forward+backward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.rms_norm`` (forward reads x and writes
y; backward reads x, dy and writes dx; the weight and rstd are negligible and not counted).
"""
import torch

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.rms_norm import rms_norm, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, hidden in ((4096, 2048), (16384, 4096), (8192, 5120)):
        x = torch.randn(tokens, hidden, device=device, dtype=dtype, requires_grad=True)
        w = torch.randn(hidden, device=device, requires_grad=True)
        dy = torch.randn_like(x)
        impls = {"triton": rms_norm, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_impls(impls, f"{tokens}x{hidden} {args.dtype}",
                  work.rms_norm(tokens, hidden, x.element_size()),
                  lambda fn: (lambda: fn(x, w)), lambda fn: grad_step(fn, (x, w), (dy,)), rows)
    report("rms_norm", rows, ceil, args.json)


if __name__ == "__main__":
    main()
