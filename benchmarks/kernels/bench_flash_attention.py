"""Causal GQA flash attention forward / forward+backward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.flash_attention``. FLOPs are useful
causal work: forward 2 matmuls x 2 FLOPs x B*H*S*S*D / 2 (half the score matrix is masked);
backward 2.5x the forward (5 matmuls instead of 2).
The eager baseline is version 1's explicit attention (repeat K/V, mask, softmax).
"""

import torch

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.flash_attention import flash_attention, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for bsz, seq, hq, hk, d in ((8, 1024, 16, 4, 64), (4, 2048, 16, 4, 64), (2, 4096, 16, 4, 64),
                                (4, 2048, 16, 4, 128)):
        q = torch.randn(bsz, seq, hq, d, device=device, dtype=dtype, requires_grad=True)
        k = torch.randn(bsz, seq, hk, d, device=device, dtype=dtype, requires_grad=True)
        v = torch.randn_like(k, requires_grad=True)
        do = torch.randn_like(q)
        impls = {"triton": flash_attention, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_impls(impls, f"B{bsz} S{seq} H{hq}/{hk} D{d}",
                  work.flash_attention(bsz, seq, hq, hk, d, q.element_size()),
                  lambda fn: (lambda: fn(q, k, v)), lambda fn: grad_step(fn, (q, k, v), (do,)),
                  rows)
    report("flash_attention", rows, ceil, args.json)


if __name__ == "__main__":
    main()
