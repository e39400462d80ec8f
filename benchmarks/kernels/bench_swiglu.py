"""SwiGLU ``silu(gate) * up`` forward / forward+backward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.swiglu`` (forward reads gate, up and
writes y; backward reads dy, gate, up and writes dgate, dup).
"""
import torch

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.swiglu import swiglu, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, inter in ((4096, 5632), (16384, 11008)):
        g = torch.randn(tokens, inter, device=device, dtype=dtype, requires_grad=True)
        u = torch.randn_like(g, requires_grad=True)
        dy = torch.randn_like(g)
        impls = {"triton": swiglu, "eager": reference, "compile": compiled(reference, not args.no_compile)}
        run_impls(impls, f"{tokens}x{inter} {args.dtype}",
                  work.swiglu(tokens, inter, g.element_size()),
                  lambda fn: (lambda: fn(g, u)), lambda fn: grad_step(fn, (g, u), (dy,)), rows)
    report("swiglu", rows, ceil, args.json)


if __name__ == "__main__":
    main()
