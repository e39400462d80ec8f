"""The Markdown summary of a profiling run: what the profilers measured, and speed cited
from the side-by-side harness.

Speed is measured in one place only: the harness (``python -m benchmarks run``), which
times all versions round-robin in one loop so that machine noise falls on all of them
alike. Each profiled version also times its own run (``<version>/result.json``), but
those runs are separate loops minutes apart, so their ranking can disagree with the
harness's; the summary never prints them. Given the harness's ``results.json``, it cites
that run's median, spread, tokens/s, speedup and achieved FLOP/s row by row; without
one it has no speed column at all.

Achieved FLOP/s is the harness's: the workload's FLOPs counted once on version 1 (the
useful work, the same for every version) divided by each version's median, so it ranks
exactly like speed. Each version's own counted FLOPs (its method's ops, e.g. the extra
work of a fused kernel or a recomputation) are a separate, labelled column.
"""
from __future__ import annotations

import json
from pathlib import Path

from .flops import known_peak

# Columns whose numbers come from the harness, in the order printed.
CITED_COLUMNS = ("median ms", "p10–p90 ms", "tokens/s", "speedup vs v1",
                 "achieved GFLOP/s (v1's workload FLOPs / median)", "MFU")


def _mib(n):
    return "n/a" if n is None else f"{n / 2**20:.1f}"


def _fmt(value, spec=",.0f"):
    return "n/a" if value is None else format(value, spec)


def load_harness(path: Path) -> tuple[list[dict], str]:
    """The rows of a harness ``results.json`` and the name to cite it by.

    Raises ValueError naming the file when it is not a harness result."""
    try:
        record = json.loads(Path(path).read_text())
        rows = record["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--harness {path}: not a harness results.json written by "
                         f"`python -m benchmarks run` ({type(exc).__name__}: {exc})") from exc
    return rows, str(path)


def harness_cells(result: dict, rows: list[dict]) -> tuple[list[str], str | None]:
    """The cited cells (CITED_COLUMNS) for one profiled ``result``, or blanks and the reason
    the harness has no comparable row (another shape or dtype, not run, failed)."""
    blank = ["—"] * len(CITED_COLUMNS)
    match = [r for r in rows if (r["version"], r["preset"], r["mode"])
             == (result["version"], result["preset"], result["mode"])]
    if not match:
        return blank, "not in the harness run"
    row = match[0]
    if row.get("median_ms") is None or row["status"] not in ("ok",):
        return blank, f"harness row is {row['status']}" + (f": {row['detail']}"
                                                          if row.get("detail") else "")
    shape = (row.get("batch_size"), row.get("seq_len"), row.get("dtype"))
    ours = (result["batch_size"], result["seq_len"], result["dtype"])
    if shape != ours:
        return blank, f"harness timed batch/seq/dtype {shape}, the profiler ran {ours}"
    achieved = row.get("achieved_flops_per_s")
    peak = known_peak(result["machine"]["device_name"], result["dtype"])
    mfu = "n/a" if achieved is None or peak is None else f"{100 * achieved / peak[0]:.1f}%"
    speedup = row.get("speedup_vs_v1")
    cells = [f"{row['median_ms']:.2f}", f"{row['p10_ms']:.2f}–{row['p90_ms']:.2f}",
             _fmt(row.get("tokens_per_s")), "n/a" if speedup is None else f"{speedup:.2f}×",
             _fmt(achieved and achieved / 1e9, ".1f"), mfu]
    return cells, ("BUSY machine: " + "; ".join(row["busy"])) if row.get("busy") else None


def write_summary(out: Path, summaries: list[dict], unavailable: dict[str, str],
                  harness: tuple[list[dict], str] | None = None) -> Path:
    """``out/summary.md``: one table row per profiled version plus every step's status.

    harness: ``load_harness(results.json)``; its rows give the speed columns. None: the
    summary has no speed column and says where speed is measured."""
    lines = ["# Profiling summary", ""]
    if summaries:
        m = summaries[0]["result"]["machine"]
        lines += [f"Machine: {m['device_name']} | torch {m['torch']} | triton {m['triton']} | "
                  f"git {m['git_sha']}", ""]
        if harness:
            lines += [f"Speed columns (marked *) are cited from the side-by-side harness run "
                      f"`{harness[1]}` (its table.md), where all versions were timed "
                      "round-robin in one loop; the profilers' own runs are not used for "
                      "speed. Achieved GFLOP/s = the workload's FLOPs counted once on v1 / "
                      "the version's median, so it ranks like speed.", ""]
        else:
            lines += ["No speed column: speed is measured side by side by "
                      "`python -m benchmarks run` (bench/table.md); pass `--harness "
                      "<its results.json>` to cite it here. `run_all_profilers.sh` does.", ""]
        cited = [f"{c} *" for c in CITED_COLUMNS] if harness else []
        header = (["version", "preset", "mode", "dtype", *cited,
                   "own counted GFLOP/step (this version's ops)", "peak MiB",
                   "kernels/step", "aten ops/step"])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        notes = []
        for s in summaries:
            r, f = s["result"], s["flops"]
            cells = []
            if harness:
                cells, note = harness_cells(r, harness[0])
                if note:
                    notes.append(f"- {r['version']}: {note}")
            lines.append("| " + " | ".join([
                r["version"], r["preset"], r["mode"], r["dtype"], *cells,
                f"{f['step_flops'] / 1e9:.2f}", _mib(r["peak_memory_bytes"]),
                _fmt(r["kernel_launches_per_step"]), _fmt(r["ops_per_step"])]) + " |")
        lines += ["", *notes]
        if harness:
            lines += ["", "Peak used for MFU: " + "; ".join(sorted({
                s["flops"]["peak"] for s in summaries})), ""]
        lines += ["Profiler CPU time per step inside each trace range (profiler overhead "
                  "included; a breakdown within one version, not a speed comparison). "
                  "`attention` and `mlp` include their block's RMSNorm (versions 3 and 4 fuse "
                  "it into the projection); `final_norm` is the norm after the last layer.", ""]
        for s in summaries:
            if s["block_ms"]:
                blocks = ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(s["block_ms"].items()))
                lines.append(f"- {s['version']}: {blocks}")
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
