"""v4's fused RMSNorm + QKV projection + RoPE, forward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.norm_qkv_rope``. Forward only: the
backward is version 3's RoPE and RMSNorm kernels and torch GEMMs. Shapes: TinyLlama's
attention input (hidden 2048, 32 query and 4 KV heads of 64) at prefill.
"""
import torch

from benchmarks.kernels import (ceilings, compiled, parser, report, require_gpu, run_forward,
                                torch_dtype, work)
from version1_baseline.model import RotaryEmbedding


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version4_ultra.kernels.norm_qkv_rope import norm_qkv_rope, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for bsz, seq, hidden, hq, hk, d in ((4, 512, 2048, 32, 4, 64), (8, 1024, 2048, 32, 4, 64)):
        x = torch.randn(bsz, seq, hidden, device=device, dtype=dtype)
        nw = torch.ones(hidden, device=device)
        wq, wk, wv = (torch.randn(n * d, hidden, device=device, dtype=dtype) * hidden ** -0.5
                      for n in (hq, hk, hk))
        cos, sin = RotaryEmbedding(d).to(device)(torch.arange(seq, device=device))
        impls = {"triton": norm_qkv_rope, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_forward(impls, f"B{bsz} S{seq} {hidden}->H{hq}/{hk} D{d}",
                    work.norm_qkv_rope(bsz * seq, hidden, hq, hk, d, x.element_size()),
                    lambda fn: fn(x, nw, wq, wk, wv, cos, sin), rows)
    report("norm_qkv_rope", rows, ceil, args.json)


if __name__ == "__main__":
    main()
