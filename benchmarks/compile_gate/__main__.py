"""``python -m benchmarks.compile_gate [--out DIR]``: the compile table, on any machine.

Records the launches versions 3 and 4 make (``record.py``), compiles each distinct one for
sm_90, sm_80 and gfx942 (``compile_launch.py``) and writes ``compile.md`` / ``.csv`` /
``.json`` to ``--out`` (default ``results/<date-time>/compile/``; ``--out
benchmarks/results/compile`` refreshes the committed table). Exit status 0 when every
check passes, 1 when any fails (the table says which), 2 on bad arguments.

``--driver`` (GPU only) instead launches the kernels for real on this GPU and prints the
registers and spills the driver reports (``driver_report.py``).
"""
from __future__ import annotations

import os
import sys

# Compiled-mode kernels are what the gate compiles: the interpreter choice must be made
# before anything imports triton (benchmarks/__init__ would pick the interpreter on CPU).
if os.environ.get("TRITON_INTERPRET") != "0" and "--driver" not in sys.argv:
    os.environ["TRITON_INTERPRET"] = "0"
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # triton 3.9's default, stated
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.compile_gate", *sys.argv[1:]])

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from .record import DTYPES, HEAD_DIM_SWEEP, MODES, VERSIONS  # noqa: E402

DEFAULT_PRESETS = "tiny,small,medium,tinyllama-1.1b," + ",".join(HEAD_DIM_SWEEP)


def _list(parser, text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [i for i in items if i not in allowed]
    if unknown or not items:
        parser.error(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return items


def main(argv=None) -> int:
    from version1_baseline.config import PRESETS

    from .targets import TARGETS, parse_targets

    p = argparse.ArgumentParser(prog="python -m benchmarks.compile_gate",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="output folder (default results/<date-time>/"
                                               "compile)")
    p.add_argument("--versions", default=",".join(VERSIONS))
    p.add_argument("--presets", default=DEFAULT_PRESETS)
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--modes", default=",".join(MODES + ("decode-staged",)))
    p.add_argument("--targets", default="all", help=f"all or some of {', '.join(TARGETS)}")
    p.add_argument("--seq-cap", type=int, default=128,
                   help="record at min(max_seq_len, this) tokens (the code compiled does not "
                        "depend on it)")
    p.add_argument("--driver", action="store_true",
                   help="GPU only: launch for real and print the driver's registers/spills")
    args = p.parse_args(argv)
    presets = _list(p, args.presets, list(PRESETS) + list(HEAD_DIM_SWEEP), "preset")
    versions = _list(p, args.versions, VERSIONS, "version")
    dtypes = _list(p, args.dtypes, list(DTYPES), "dtype")
    modes = _list(p, args.modes, MODES + ("decode-staged",), "mode")
    if args.driver:
        from .driver_report import main as driver_main
        return driver_main(versions, presets, dtypes, modes, args.seq_cap, args.out)
    try:
        targets = parse_targets(args.targets)
    except ValueError as exc:
        p.error(str(exc))

    import torch
    import triton

    from benchmarks.environment import git_sha

    from .gate import failures, run_gate
    from .table import write_table

    start = time.perf_counter()
    rows = run_gate(versions, presets, dtypes, modes, targets, args.seq_cap,
                    log=lambda line: print(line, flush=True))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("results") / stamp / "compile"
    meta = {"triton": triton.__version__, "torch": torch.__version__, "git_sha": git_sha(),
            "host": platform.node() or "unknown", "generated": stamp, "seq_cap": args.seq_cap,
            "targets": [t.name for t in targets], "presets": presets, "versions": versions,
            "dtypes": dtypes, "modes": modes,
            "wall_s": round(time.perf_counter() - start, 1)}
    paths = write_table(rows, meta, out)
    bad = failures(rows)
    print(f"compile_gate: {len(rows)} rows in {meta['wall_s']} s, {len(bad)} failing a check; "
          f"wrote {', '.join(str(p) for p in paths.values())}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
