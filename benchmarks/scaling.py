"""``python -m benchmarks scaling --version v1 --preset tiny --nprocs 1,2 --parallel ddp``.

Launches the version's train mode under torchrun once per process count, reads back each
run's result JSON and writes the scaling table: global tokens/s, step time, peak memory
per rank, and efficiency against linear scaling, ``tokens/s(N) / (N * tokens/s(1))``.
Every row is a measured run; the N=1 row is the same engine with one process.

Each rank runs one intra-op thread (OMP_NUM_THREADS=1, torchrun's own default for N > 1,
applied to N = 1 too), so N processes use N cores and "linear" means one core per rank.
The machine's load average is recorded with each run: on a shared machine it explains noise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from version1_baseline.errors import UserError

from .environment import REPO_ROOT
from .schema import load
from .versions import ENTRIES


def run_one(module: str, nprocs: int, args: argparse.Namespace, out: Path) -> dict:
    """One torchrun launch of ``nprocs`` ranks; returns its validated result record."""
    path = out / f"{args.version}-{args.parallel}-x{nprocs}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nprocs), "-m", module, "--mode", "train",
           "--parallel", args.parallel, "--preset", args.preset, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--json", str(path)]
    for flag, value in (("--batch-size", args.batch_size), ("--seq-len", args.seq_len)):
        if value:
            cmd += [flag, str(value)]
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"error: {nprocs}-process run failed (exit {proc.returncode}):\n"
                         + proc.stderr[-3000:])
    record = load(path)
    record["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return record


def scaling_table(records: list[dict]) -> str:
    """Markdown table of records sorted by world size; efficiency against the 1-process row."""
    records = sorted(records, key=lambda r: r["world_size"])
    base = next((r for r in records if r["world_size"] == 1), None)
    first = records[0]
    lines = [f"{first['version']} {first['preset']} train, --parallel {first['parallel']}, "
             f"global batch {first['batch_size']} x seq {first['seq_len']}, {first['dtype']}, "
             f"on {first['machine']['device_name']} (torch {first['machine']['torch']}, "
             f"git {first['machine']['git_sha']})",
             "",
             "| processes | tokens/s | step median (ms) | p10-p90 (ms) | peak memory per rank "
             "(MiB) | efficiency vs linear | load avg before/after |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        t = r["step_time_ms"]
        peaks = r.get("peak_memory_per_rank") or []
        mem = ", ".join("n/a" if p is None else f"{p / 2**20:.1f}" for p in peaks) or "n/a"
        eff = (f"{r['tokens_per_s'] / (r['world_size'] * base['tokens_per_s']):.2f}"
               if base else "n/a (no 1-process run)")
        lines.append(f"| {r['world_size']} | {r['tokens_per_s']:,.0f} | {t['median']:.1f} | "
                     f"{t['p10']:.1f}-{t['p90']:.1f} | {mem} | {eff} | "
                     f"{'/'.join(str(x) for x in r.get('load_average_1min', [])) or 'n/a'} |")
    lines += ["", f"One intra-op thread per rank (OMP_NUM_THREADS=1). Peak memory: "
              f"{first['peak_memory_method']}. Step time: "
              "the slowest rank's per step. Sharding: " + records[-1]["sharding"] + "."]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    entry = ENTRIES.get(args.version)
    if entry is None or entry.name in ("compile", "rtl"):
        raise UserError(f"--version {args.version!r}: choose one of v1, v2, v3, v4")
    try:
        counts = [int(n) for n in args.nprocs.split(",") if n.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--nprocs {args.nprocs!r}: expected positive ints like 1,2")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = [run_one(entry.module, n, args, out) for n in counts]
    table = scaling_table(records)
    (out / "table.md").write_text(table)
    (out / "scaling.json").write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    print(table)
    print(f"wrote {out / 'table.md'}, {out / 'scaling.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("scaling", help="tokens/s and peak memory per rank at 1, 2, ... "
                       "processes under torchrun, with efficiency against linear")
    p.add_argument("--version", default="v1")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--parallel", default="ddp", choices=["ddp", "fsdp"])
    p.add_argument("--nprocs", default="1,2", help="comma-separated process counts")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--out", required=True, help="folder for the JSONs and table.md")
