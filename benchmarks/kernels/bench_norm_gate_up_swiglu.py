"""v4's fused RMSNorm + gate/up projection + SwiGLU, forward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.norm_gate_up_swiglu``. Forward only:
the backward is version 3's SwiGLU and RMSNorm kernels and torch GEMMs. Shapes: TinyLlama's
MLP (hidden 2048, intermediate 5632) at prefill.
"""
import torch

from benchmarks.kernels import (ceilings, compiled, parser, report, require_gpu, run_forward,
                                torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version4_ultra.kernels.norm_gate_up_swiglu import norm_gate_up_swiglu, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, hidden, inter in ((2048, 2048, 5632), (8192, 2048, 5632)):
        x = torch.randn(tokens, hidden, device=device, dtype=dtype)
        nw = torch.ones(hidden, device=device)
        wg, wu = (torch.randn(inter, hidden, device=device, dtype=dtype) * hidden ** -0.5
                  for _ in range(2))
        impls = {"triton": norm_gate_up_swiglu, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_forward(impls, f"{tokens}x{hidden}->{inter} {args.dtype}",
                    work.norm_gate_up_swiglu(tokens, hidden, inter, x.element_size()),
                    lambda fn: fn(x, nw, wg, wu), rows)
    report("norm_gate_up_swiglu", rows, ceil, args.json)


if __name__ == "__main__":
    main()
