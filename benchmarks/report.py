"""Speedup tables from harness rows: Markdown (printed and saved), CSV and JSON."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .kernel_points import flop_per_byte, flops_per_s, is_placed
from .versions import ENTRIES

# kernels.csv columns. The names carry the caveats: times come from one profiled step and
# the bytes are a minimum-traffic model (benchmarks.kernel_points), not measured traffic.
KERNEL_FIELDS = ("version", "preset", "mode", "name", "calls", "time_ms_profiled",
                 "share_of_op_time", "flops", "flops_source", "bytes_min_traffic_model",
                 "flop_per_byte", "flops_per_s", "on_roofline")


# First words of every table.md this harness writes (benchmarks.readme_results finds the
# speedup tables among other committed table.md files by it).
SPEEDUP_TITLE = "# Side-by-side benchmark"


def _num(value, spec):
    return "" if value is None else format(value, spec)


# A "% of matmul ceiling" above 100 is printed as this flag, with ABOVE_CEILING_NOTE below
# the table: the ceiling did not bound that workload, so the percentage would mislead.
ABOVE_CEILING = ">ceiling†"
ABOVE_CEILING_NOTE = ("† achieved rate above the matmul ceiling measured just before these "
                      "rows (best of several repeats of one large square matmul): that GEMM "
                      "is not an upper bound for this workload here, so no percentage is given.")


def _ceiling_cell(fraction: float | None) -> str:
    if fraction is None:
        return ""
    return ABOVE_CEILING if fraction > 1 else f"{100 * fraction:.1f}"


def markdown_table(rows: list, machine: dict) -> str:
    """One table per (preset, mode); speedups are against v1 on the same device and shape."""
    lines = [f"Machine: {machine['device_name']} | torch {machine['torch']} | "
             f"triton {machine['triton']} | git {machine['git_sha']}", ""]
    c = machine.get("ceilings")
    if c:
        best = f"best of {c['repeats']}" if c.get("repeats") else "median of repeats"
        lines += [f"Measured ceilings on this device ({best}): copy "
                  f"{c['copy_bytes_per_s'] / 1e9:.1f} GB/s ({c['copy_mib']} MiB), "
                  f"{c['matmul_dtype']} matmul {c['matmul_flops_per_s'] / 1e12:.3f} TFLOP/s "
                  f"({c['matmul_size']}³). Achieved rates divide the workload's FLOPs (counted "
                  "on v1) by each median; the matmul ceiling of each table is measured again "
                  "just before its rows.", ""]
    lines += ["GB/s (model) = minimum bytes a step must move (weights, KV cache, logits, and "
              "for training gradients and optimizer state, each once: benchmarks.roofline, a "
              "model, not measured traffic) / measured median.", ""]
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        groups.setdefault((r.preset, r.mode), []).append(r)
    for (preset, mode), group in groups.items():
        shape = next((f"batch {r.batch_size}, seq {r.seq_len}, {r.dtype}" for r in group
                      if r.batch_size), "")
        lines += [f"### {preset} / {mode}" + (f" ({shape})" if shape else ""), "",
                  "| version | what | status | median ms | p10–p90 ms | tokens/s | speedup vs v1 |"
                  " GB/s (model) | achieved GFLOP/s | % of matmul ceiling | peak MiB |"
                  " kernels/step | aten ops/step |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in group:
            what = ENTRIES[r.version].label if r.version in ENTRIES else r.version
            spread = f"{r.p10_ms:.2f}–{r.p90_ms:.2f}" if r.p10_ms is not None else ""
            peak = "" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.1f}"
            status = r.status if not r.detail else f"{r.status}: {r.detail}"
            if getattr(r, "busy", None):   # every reason is in results.json / .csv
                more = f" (+{len(r.busy) - 1} more)" if len(r.busy) > 1 else ""
                status += f" — BUSY machine: {r.busy[0]}{more}"
            if r.status == "estimated":
                status = (f"ESTIMATED (compute {r.estimated_compute_ms:.3f} ms + link "
                          f"{r.estimated_transfer_ms:.3f} ms): {r.detail}")
            lines.append(
                f"| {r.version} | {what} | {status} | {_num(r.median_ms, '.2f')} | {spread} | "
                f"{_num(r.tokens_per_s, ',.0f')} | "
                f"{_num(r.speedup_vs_v1, '.2f') + ('×' if r.speedup_vs_v1 else '')} | "
                f"{_num(r.model_bytes_per_s and r.model_bytes_per_s / 1e9, '.2f')} | "
                f"{_num(r.achieved_flops_per_s and r.achieved_flops_per_s / 1e9, '.1f')} | "
                f"{_ceiling_cell(r.fraction_of_matmul_ceiling)} | "
                f"{peak} | "
                f"{_num(r.kernel_launches_per_step, 'd')} | {_num(r.ops_per_step, 'd')} |")
        if any((r.fraction_of_matmul_ceiling or 0) > 1 for r in group):
            lines += ["", ABOVE_CEILING_NOTE]
        lines.append("")
    return "\n".join(lines)


def machine_markdown(machine: dict) -> str:
    """A short description of the machine a result came from (first line: its name)."""
    lines = [f"# {machine['device_name']}", ""]
    for key in ("device", "driver", "cpu", "cpu_count", "host", "python", "torch", "triton",
                "git_sha"):
        lines.append(f"- {key}: {machine.get(key)}")
    return "\n".join(lines) + "\n"


def write_kernels_csv(rows: list, path: Path) -> Path:
    """One line per (row, op or kernel name): the numbers behind roofline_kernels.png."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=KERNEL_FIELDS)
        writer.writeheader()
        for r in rows:
            total = sum(k["time_ms"] for k in r.kernels)
            for k in r.kernels:
                writer.writerow({
                    "version": r.version, "preset": r.preset, "mode": r.mode, "name": k["name"],
                    "calls": k["calls"], "time_ms_profiled": f"{k['time_ms']:.6g}",
                    "share_of_op_time": f"{k['time_ms'] / total:.4f}" if total else "",
                    "flops": _num(k["flops"], "d"), "flops_source": k["flops_source"] or "",
                    "bytes_min_traffic_model": _num(k["bytes"], "d"),
                    "flop_per_byte": _num(flop_per_byte(k), ".6g"),
                    "flops_per_s": _num(flops_per_s(k), ".6g"), "on_roofline": is_placed(k)})
    return path


def write_reports(rows: list, machine: dict, out: Path, settings: dict) -> dict[str, Path]:
    """Write table.md, results.csv, kernels.csv and results.json into ``out``; return paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "table.md", "csv": out / "results.csv", "json": out / "results.json",
             "machine": out / "machine.md", "kernels": out / "kernels.csv"}
    paths["machine"].write_text(machine_markdown(machine))
    smoke = " — SMOKE RUN (--quick): few steps, short sequences; not for reporting" \
        if settings.get("quick") else ""
    heading = (f"{SPEEDUP_TITLE}: {', '.join(settings.get('presets', []))} / "
               f"{', '.join(settings.get('modes', []))} on {machine['device_name']}{smoke}\n\n"
               "Generated by `python -m benchmarks run`; every time below was measured in this "
               "run, except rows marked ESTIMATED. Rows marked BUSY were measured while the "
               "machine was busy (load or spread; thresholds in `benchmarks/noise.py`): read "
               "them as upper bounds.\n\n")
    paths["md"].write_text(heading + markdown_table(rows, machine) + "\n")
    records = [r.to_json() for r in rows]
    with paths["csv"].open("w", newline="") as f:
        # nested records (extra, kernels, load snapshots) stay in results.json; busy is a list
        fields = [k for k in records[0] if k not in ("extra", "kernels", "load")] \
            if records else []
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**rec, "busy": "; ".join(rec.get("busy") or [])} for rec in records)
    write_kernels_csv(rows, paths["kernels"])
    paths["json"].write_text(json.dumps({"machine": machine, "settings": settings,
                                         "rows": records}, indent=2) + "\n")
    return paths
