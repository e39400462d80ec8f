"""v4's decode megakernel (one layer, one new token per sequence): Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.decode_layer`` (the layer's weights and
the valid K/V cache read once). Decode is bound by reading the weights, so each row also
reports the GB/s of weights read alone (``weight_GBps``: the seven matrices' bytes over the
measured time). Impls: ``triton`` (the one-launch persistent kernel where it can run, else
staged), ``staged`` (five launches), the plain reference and its ``torch.compile``.
Inference only: the forward is timed. Shapes: TinyLlama (hidden 2048, 32/4 heads of 64,
intermediate 5632) at a 1024-token cache.
"""
import torch

from benchmarks.kernels import (ceilings, compiled, parser, report, require_gpu, run_forward,
                                torch_dtype, work)
from version1_baseline.model import RotaryEmbedding

HIDDEN, HQ, HK, D, INTER, POS = 2048, 32, 4, 64, 5632, 1024


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version4_ultra.kernels.decode_layer import decode_layer, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    shapes = [(HIDDEN,), (HQ * D, HIDDEN), (HK * D, HIDDEN), (HK * D, HIDDEN), (HIDDEN, HQ * D),
              (HIDDEN,), (INTER, HIDDEN), (INTER, HIDDEN), (HIDDEN, INTER)]
    weights = [torch.ones(s, device=device) if len(s) == 1
               else torch.randn(s, device=device, dtype=dtype) * s[1] ** -0.5 for s in shapes]
    cos, sin = RotaryEmbedding(D).to(device)(torch.tensor([POS], device=device))
    weight_bytes = work.decode_layer_weight_bytes(HIDDEN, HQ, HK, D, INTER,
                                                  weights[1].element_size())
    for bsz in (1, 8, 16):
        x = torch.randn(bsz, 1, HIDDEN, device=device, dtype=dtype)
        k = torch.randn(bsz, HK, POS + 1, D, device=device, dtype=dtype)
        v = torch.randn_like(k)
        staged = lambda *a: decode_layer(*a, persistent=False)  # noqa: E731
        impls = {"triton": decode_layer, "staged": staged, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        start = len(rows)
        run_forward(impls, f"B{bsz} T{POS + 1} {args.dtype}",
                    work.decode_layer(bsz, HIDDEN, HQ, HK, D, INTER, POS + 1, k.element_size()),
                    lambda fn: fn(x, weights, k, v, POS, cos, sin, 1e-5), rows)
        for r in rows[start:]:
            r.update(weight_bytes=weight_bytes, weight_GBps=weight_bytes / r["ms"] * 1e-6)
    report("decode_layer", rows, ceil, args.json)
    print("  GB/s of weights read (the seven matrices' bytes over the measured time):")
    for r in rows:
        print(f"  {r['shape']:<28} {r['impl']:<8} {r['weight_GBps']:8.1f} GB/s "
              f"({100 * r['weight_GBps'] / ceil['copy_GBps']:5.1f}% of copy)")


if __name__ == "__main__":
    main()
