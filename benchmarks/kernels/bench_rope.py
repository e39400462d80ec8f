"""RoPE on Q and K (GQA) forward / forward+backward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.rope`` (read q, k and write both;
the same again for the backward).
"""
import torch

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype, work)
from version1_baseline.model import RotaryEmbedding


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.rope import apply_rope, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for bsz, seq, hq, hk, d in ((8, 2048, 32, 8, 64), (4, 4096, 32, 8, 128)):
        q = torch.randn(bsz, seq, hq, d, device=device, dtype=dtype, requires_grad=True)
        k = torch.randn(bsz, seq, hk, d, device=device, dtype=dtype, requires_grad=True)
        cos, sin = RotaryEmbedding(d).to(device)(torch.arange(seq, device=device))
        grads = (torch.randn_like(q), torch.randn_like(k))
        impls = {"triton": apply_rope, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_impls(impls, f"B{bsz} S{seq} H{hq}/{hk} D{d}",
                  work.rope(bsz, seq, hq, hk, d, q.element_size()),
                  lambda fn: (lambda: fn(q, k, cos, sin)),
                  lambda fn: grad_step(fn, (q, k, cos, sin), grads), rows)
    report("rope", rows, ceil, args.json)


if __name__ == "__main__":
    main()
