"""Profile each version-3 Triton kernel alone: ``python -m benchmarks.profile_kernels``.

For every kernel, one forward + backward at a preset-sized shape runs under
``torch.profiler`` (CPU + CUDA activities); the script prints the device-time table and
writes a Chrome trace per kernel to ``--out`` (default ``results/<date-time>/v3_kernels``,
beside the other outputs of a run). That shows the Triton launches by name and
what else (allocations, the dw reduction, casts) runs around them.

GPU only: in the interpreter, a profile would measure Python, not the kernel. Without a GPU
it exits with status 2 and says so.
"""
from __future__ import annotations

import os
import sys
import time

import torch

from version1_baseline.config import get_preset

from .environment import REPO_ROOT
from .validation import (ArgumentParser, add_debug_flag, check_workload, check_writable_folder,
                         cli_boundary)


def cases(config, device, dtype, batch, seq):
    """(name, fn) pairs: each fn runs one forward + backward of one kernel."""
    from version1_baseline.model import RotaryEmbedding
    from version3_triton.kernels.cross_entropy import cross_entropy
    from version3_triton.kernels.flash_attention import flash_attention
    from version3_triton.kernels.rms_norm import add_rms_norm, rms_norm
    from version3_triton.kernels.rope import apply_rope
    from version3_triton.kernels.swiglu import swiglu

    h, d = config.hidden_size, config.head_dim
    hq, hk, inter, vocab = config.num_heads, config.num_kv_heads, config.intermediate_size, \
        config.vocab_size
    def leaf(*shape, dt=dtype):
        return torch.randn(*shape, device=device, dtype=dt, requires_grad=True)

    x, r, w = leaf(batch, seq, h), leaf(batch, seq, h), leaf(h, dt=torch.float32)
    q, k, v = leaf(batch, seq, hq, d), leaf(batch, seq, hk, d), leaf(batch, seq, hk, d)
    g, u = leaf(batch, seq, inter), leaf(batch, seq, inter)
    logits = leaf(batch * seq, vocab)
    labels = torch.randint(0, vocab, (batch * seq,), device=device)
    cos, sin = RotaryEmbedding(d).to(device)(torch.arange(seq, device=device))

    def run(out):
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])

    return [
        ("rms_norm", lambda: run(rms_norm(x, w))),
        ("add_rms_norm", lambda: run(add_rms_norm(x, r, w))),
        ("rope", lambda: run(apply_rope(q, k, cos, sin))),
        ("flash_attention", lambda: run(flash_attention(q, k, v))),
        ("swiglu", lambda: run(swiglu(g, u))),
        ("cross_entropy", lambda: run(cross_entropy(logits, labels))),
    ]


@cli_boundary
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.profile_kernels",
                       description=__doc__.splitlines()[0])
    add_debug_flag(p)
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--out", default=None, help="default: results/<date-time>/v3_kernels")
    args = p.parse_args(argv)
    config = get_preset(args.preset)
    batch = config.batch_size if args.batch_size is None else args.batch_size
    seq = config.max_seq_len if args.seq_len is None else args.seq_len
    check_workload(modes=["train"], batch_size=batch, seq_len=seq, flags=True,
                   max_seq_len=config.max_seq_len, where=f"preset {args.preset}")
    out = args.out or str(REPO_ROOT / "results" / time.strftime("%Y%m%d-%H%M%S") / "v3_kernels")
    if not torch.cuda.is_available():
        print("no GPU: Triton kernels run only in the interpreter; not profiling them",
              file=sys.stderr)
        return 2
    from version3_triton import runtime
    if runtime.INTERPRET:
        print("TRITON_INTERPRET is set: not profiling interpreted kernels", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    check_writable_folder(out, "--out")     # creates it, before the first profile
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    for name, fn in cases(config, torch.device("cuda"), dtype, batch, seq):
        for _ in range(3):  # compile and warm up outside the profile
            fn()
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=activities) as prof:
            fn()
            torch.cuda.synchronize()
        print(f"== {name} ({args.preset}, batch {batch}, seq {seq}, {args.dtype}) ==")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))
        prof.export_chrome_trace(os.path.join(out, f"{name}.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
