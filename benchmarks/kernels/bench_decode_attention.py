"""Decode attention (one query per sequence over the KV cache): Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.decode_attention`` (the valid part
of the K and V cache, q and the output; q.k and p.v). Inference only: only the forward is timed.
"""

import torch

from benchmarks.kernels import (bench_ms, ceilings, compiled, parser, rates, report,
                                require_gpu, torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.decode_attention import decode_attention, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for bsz, hq, hk, d, length in ((16, 32, 8, 64, 2048), (64, 32, 8, 128, 4096)):
        q = torch.randn(bsz, hq, d, device=device, dtype=dtype)
        k = torch.randn(bsz, hk, length, d, device=device, dtype=dtype)
        v = torch.randn_like(k)
        count = work.decode_attention(bsz, hq, hk, d, length, k.element_size())
        impls = {"triton": decode_attention, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        with torch.no_grad():
            for impl, fn in impls.items():
                if fn is None:
                    continue
                ms = bench_ms(lambda: fn(q, k, v, length))
                rows.append({"shape": f"B{bsz} H{hq}/{hk} D{d} T{length}", "impl": impl,
                             "pass": "fwd", **rates(ms, count.fwd_bytes, count.fwd_flops)})
    report("decode_attention", rows, ceil, args.json)


if __name__ == "__main__":
    main()
