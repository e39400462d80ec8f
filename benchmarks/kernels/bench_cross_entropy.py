"""Cross-entropy over the vocabulary, forward / forward+backward: Triton vs eager vs compile.

Bytes and FLOPs per shape: ``benchmarks.kernels.work.cross_entropy`` (the Triton kernel's
real traffic; the same counts for the baselines, so the rates compare times directly).
"""
import torch

from benchmarks.kernels import (ceilings, compiled, grad_step, parser, report, require_gpu,
                                run_impls, torch_dtype, work)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    device = require_gpu()
    from version3_triton.kernels.cross_entropy import cross_entropy, reference
    dtype, rows = torch_dtype(args.dtype), []
    ceil = ceilings(device)
    for tokens, vocab in ((8192, 32000), (4096, 128256)):
        logits = torch.randn(tokens, vocab, device=device, dtype=dtype, requires_grad=True)
        labels = torch.randint(0, vocab, (tokens,), device=device)
        one = torch.ones((), device=device)
        impls = {"triton": cross_entropy, "eager": reference,
                 "compile": compiled(reference, not args.no_compile)}
        run_impls(impls, f"{tokens}x{vocab} {args.dtype}",
                  work.cross_entropy(tokens, vocab, logits.element_size()),
                  lambda fn: (lambda: fn(logits, labels)),
                  lambda fn: grad_step(fn, (logits, labels), (one,)), rows)
    report("cross_entropy", rows, ceil, args.json)


if __name__ == "__main__":
    main()
