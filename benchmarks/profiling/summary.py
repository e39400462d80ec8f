"""The Markdown summary of a profiling run, written only from measured values."""
from __future__ import annotations

from pathlib import Path


def _mib(n):
    return "n/a" if n is None else f"{n / 2**20:.1f}"


def _fmt(value, spec=",.0f"):
    return "n/a" if value is None else format(value, spec)


def write_summary(out: Path, summaries: list[dict], unavailable: dict[str, str]) -> Path:
    """``out/summary.md``: one table row per profiled version plus every step's status."""
    lines = ["# Profiling summary", ""]
    if summaries:
        m = summaries[0]["result"]["machine"]
        lines += [f"Machine: {m['device_name']} | torch {m['torch']} | triton {m['triton']} | "
                  f"git {m['git_sha']}", ""]
        lines += ["| version | preset | mode | dtype | median ms | p10–p90 ms | tokens/s | "
                  "peak MiB | kernels/step | aten ops/step | step GFLOP | achieved GFLOP/s | MFU |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in summaries:
            r, f = s["result"], s["flops"]
            t = r["step_time_ms"]
            mfu = "n/a" if f["mfu"] is None else f"{100 * f['mfu']:.1f}%"
            lines.append(
                f"| {r['version']} | {r['preset']} | {r['mode']} | {r['dtype']} | "
                f"{t['median']:.2f} | {t['p10']:.2f}–{t['p90']:.2f} | {r['tokens_per_s']:,.0f} | "
                f"{_mib(r['peak_memory_bytes'])} | {_fmt(r['kernel_launches_per_step'])} | "
                f"{_fmt(r['ops_per_step'])} | {f['step_flops'] / 1e9:.2f} | "
                f"{f['achieved_flops_per_s'] / 1e9:.1f} | {mfu} |")
        lines += ["", "Peak used for MFU: " + "; ".join(sorted({s['flops']['peak'] for s in summaries})),
                  ""]
        for s in summaries:
            if s["block_ms"]:
                blocks = ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(s["block_ms"].items()))
                lines.append(f"- {s['version']} CPU time per step by block: {blocks}")
        lines.append("")
    for name, reason in unavailable.items():
        lines.append(f"- {name}: not run: {reason}")
    lines += ["", "## Steps", ""]
    for s in summaries:
        lines.append(f"### {s['version']}")
        for st in s["steps"]:
            mark = {"ok": "ran", "failed": "FAILED", "skipped": "skipped"}[st["status"]]
            detail = f" ({st['detail']})" if st["detail"] else ""
            lines.append(f"- {st['name']}: {mark}{detail}")
        lines.append("")
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
