"""``python -m benchmarks.profiling --versions v1,v2 --preset tiny --mode train --out DIR
[--harness bench/results.json]``: every profiler on each version; speed is cited from the
side-by-side harness, never measured here a second time (benchmarks.profiling.summary)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..environment import best_device, default_out
from ..versions import Unavailable, parse_names
from .profile_version import profile_version
from .summary import load_harness, write_summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profiling",
                                description="Run every profiler on the chosen versions.")
    p.add_argument("--versions", default="v1", help="comma list or 'all'")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--mode", default="train", choices=["train", "prefill", "decode"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--out", default=None, help="default: results/<date-time>/profile")
    p.add_argument("--no-vendor", action="store_true", help="skip nsys/ncu/rocprof*")
    p.add_argument("--allow-interpreter", action="store_true",
                   help="profile Triton versions under TRITON_INTERPRET on CPU (very slow)")
    p.add_argument("--harness", default=None, metavar="RESULTS_JSON",
                   help="results.json of a `python -m benchmarks run` on the same machine: "
                        "the summary cites its side-by-side times (default: no speed column)")
    args, version_args = p.parse_known_args(argv)
    try:
        names = parse_names(args.versions)
        # read before profiling, so that a wrong path fails in a second, not after the runs
        harness = load_harness(Path(args.harness)) if args.harness else None
    except ValueError as exc:
        p.error(str(exc))
    device = best_device(args.device)
    out = Path(args.out) if args.out else default_out("profile")
    out.mkdir(parents=True, exist_ok=True)
    summaries, unavailable, failed = [], {}, []
    for name in names:
        print(f"[profile] {name} {args.preset} {args.mode} on {device} ...", flush=True)
        try:
            summaries.append(profile_version(
                name, args.preset, args.mode, device, out, steps=args.steps, warmup=args.warmup,
                dtype_name=args.dtype, version_args=version_args, vendor=not args.no_vendor,
                allow_interpreter=args.allow_interpreter))
        except Unavailable as exc:
            unavailable[name] = str(exc)
            print(f"[profile] {name}: not run: {exc}")
        except Exception as exc:
            # One broken version must not hide the others' results; it fails the run below.
            failed.append(name)
            unavailable[name] = f"FAILED: {type(exc).__name__}: {exc}"
            print(f"[profile] {name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
    summary = write_summary(out, summaries, unavailable, harness)
    print(summary.read_text())
    print(f"[profile] results in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
