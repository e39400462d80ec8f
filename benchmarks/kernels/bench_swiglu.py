"""SwiGLU ``silu(gate) * up`` forward / forward+backward: Triton vs eager vs compile.

Bytes counted: forward reads gate, up and writes y (3 tensors); backward reads dy, gate, up
and writes dgate, dup (5 tensors).
"""
import torch
import torch.nn.functional as F

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype)


def eager(gate, up):
    return F.silu(gate) * up


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.swiglu import swiglu
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, inter in ((4096, 5632), (16384, 11008)):
        g = torch.randn(tokens, inter, device=device, dtype=dtype, requires_grad=True)
        u = torch.randn_like(g, requires_grad=True)
        dy = torch.randn_like(g)
        size = g.element_size() * g.numel()
        impls = {"triton": swiglu, "eager": eager, "compile": compiled(eager, not args.no_compile)}
        run_impls(impls, f"{tokens}x{inter} {args.dtype}", 3 * size, 3 * size + 5 * size,
                  lambda fn: (lambda: fn(g, u)), lambda fn: grad_step(fn, (g, u), (dy,)),
                  rows, 1e-6)
    report("swiglu", rows, ceil, "GB/s", args.json)


if __name__ == "__main__":
    main()
