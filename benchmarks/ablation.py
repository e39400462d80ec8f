"""Ablation: what each fusion buys, measured alone, against version 1, in one run.

    python -m benchmarks.ablation --preset small --out benchmarks/results/cpu-2core/v2

Rows: version 1, version 2 with every switch off, each fusion alone, all fusions, all
plus torch.compile. Every row starts from the same weights (version 1's seeded init) and
sees the same batches. Steps of all rows are interleaved (A, B, C, A, B, C, ...) so that
machine noise hits them alike; medians are reported. Kernel launches (GPU) or top-level
aten ops (CPU) and peak memory are counted on one extra step per row, after timing.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

import version1_baseline
import version2_fused
from version1_baseline.config import PRESETS, get_preset
from version1_baseline.errors import UserError
from version2_fused.fusions import COMPILE_MODES, SWITCHES, FusionConfig

from .environment import best_device, machine_info, machine_slug
from .runner import result_from_times
from .schema import RunResult
from .timing import summarize, time_interleaved
from .validation import (ArgumentParser, add_debug_flag, check_workload, check_writable_folder,
                         cli_boundary, require_int)
from .versions import build_model, describe_run
from .workloads import UNTIMED_STEPS, make_workload, resolve_dtype

NO_GPU = "not measured: no GPU on this machine"


def _slug(row: str) -> str:
    """'v2 all + compile(default)' -> 'v2_all_compile_default' (a file name)."""
    return re.sub(r"[^a-z0-9]+", "_", row.lower()).strip("_")


@dataclass(frozen=True)
class Variant:
    """What one ablation row runs (its measured record is a ``RunResult``): version 1
    (fusions None) or version 2 with ``fusions``, at ``dtype`` (None: the run's dtype).
    A variant's dtype is how bf16 autocast is ablated."""

    fusions: FusionConfig | None
    dtype: torch.dtype | None = None


def ablation_rows(compile_mode: str | None, device: torch.device, dtype: torch.dtype
                  ) -> dict[str, Variant]:
    """Row name -> Variant, in table order."""
    rows = {"v1": Variant(None), "v2 none": Variant(FusionConfig.none())}
    rows.update({f"v2 {name} only": Variant(FusionConfig.only(name)) for name in SWITCHES})
    rows["v2 all"] = Variant(FusionConfig())
    if compile_mode:
        rows[f"v2 all + compile({compile_mode})"] = Variant(
            FusionConfig(compile_mode=compile_mode))
    if device.type == "cuda":   # autocast is GPU-only here; the other precision is one row
        if dtype == torch.float32:
            rows["v2 all + bf16 autocast"] = Variant(FusionConfig(), torch.bfloat16)
        else:
            rows["v2 all, fp32 (autocast off)"] = Variant(FusionConfig(), torch.float32)
    return rows


def _spec_and_options(variant: Variant):
    if variant.fusions is None:
        return version1_baseline.SPEC, None
    return version2_fused.SPEC, version2_fused.Options(fusions=variant.fusions)


def build_rows(config, rows: dict[str, Variant], seed: int, device: torch.device,
               dtype: torch.dtype) -> dict:
    """One model per row, all holding version 1's init under ``seed``, on ``device``."""
    torch.manual_seed(seed)
    state = version1_baseline.TinyLlama(config).state_dict()
    models = {}
    for name, variant in rows.items():
        spec, options = _spec_and_options(variant)
        models[name] = build_model(spec, config, state, device, options,
                                   variant.dtype or dtype)
    return models


def measure_mode(models: dict, rows: dict, *, preset: str, mode: str, batch: int, seq: int,
                 device: torch.device, dtype: torch.dtype, warmup: int, repeats: int,
                 seed: int, count: bool) -> dict[str, RunResult]:
    """Interleaved timing of every row on one workload; one RunResult per row."""
    dtypes = {name: rows[name].dtype or dtype for name in models}
    works = {name: make_workload(m, mode, batch, seq, device, dtypes[name], seed=seed,
                                 train_batches=warmup + repeats + UNTIMED_STEPS)
             for name, m in models.items()}
    load_before = os.getloadavg()[0]
    seconds = time_interleaved({name: w.step for name, w in works.items()}, device,
                               warmup=warmup, repeats=repeats)
    # Other processes competing for the CPU show up here; recorded, not corrected for.
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    baseline = summarize(seconds["v1"])["median"] if "v1" in seconds else None
    results = {}
    for name, model in models.items():
        times = summarize(seconds[name])
        spec, _ = _spec_and_options(rows[name])
        extra = {"row": name, "timing": f"interleaved with rows {list(models)}",
                 "loadavg_1min_before_after_timing": load,
                 "speedup_vs_v1": baseline / times["median"] if baseline else None}
        extra.update(describe_run(spec, model, mode=mode, batch_size=batch, seq_len=seq,
                                  device=device, dtype=dtypes[name]))
        results[name] = result_from_times(
            model, works[name], seconds[name], version=spec.name,
            preset=preset, batch_size=batch, seq_len=seq, device=device, dtype=dtypes[name],
            warmup=warmup, count=count, extra=extra)
    return results


def format_table(results: dict[str, RunResult], device: torch.device) -> str:
    """A markdown table of one mode's rows (numbers exactly as measured)."""
    first = next(iter(results.values()))
    lines = [f"### {first.mode}: preset {first.preset}, batch {first.batch_size}, "
             f"seq {first.seq_len}, {first.dtype}, {first.machine['device_name']}",
             "",
             f"1-minute load average before / after timing: "
             f"{' / '.join(map(str, first.extra['loadavg_1min_before_after_timing']))} "
             f"on {first.machine['cpu_count']} cores (above the core count, other processes "
             "were competing for the CPU).",
             "",
             "| row | median ms (p10-p90) | tokens/s | vs v1 | peak MiB | "
             "kernels/step | aten ops/step | SDPA backend | last loss |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        t = r.step_time_ms
        speed = r.extra.get("speedup_vs_v1")
        peak = f"{r.peak_memory_bytes / 2**20:.1f}" if r.peak_memory_bytes is not None else "-"
        kernels = r.kernel_launches_per_step if r.kernel_launches_per_step is not None else (
            "n/a (CPU)" if device.type != "cuda" else "-")
        loss = f"{r.last_loss:.4f}" if r.last_loss is not None else "-"
        lines.append(
            f"| {name} | {t['median']:.1f} ({t['p10']:.1f}-{t['p90']:.1f}) | "
            f"{r.tokens_per_s:,.0f} | {f'{speed:.2f}x' if speed else '-'} | {peak} | "
            f"{kernels} | {r.ops_per_step if r.ops_per_step is not None else '-'} | "
            f"{r.extra.get('sdpa_backend', 'none (v1 eager)')} | {loss} |")
    if device.type != "cuda":
        lines.append(f"| v2 all + bf16 autocast | {NO_GPU} | | | | | | | |")
    return "\n".join(lines) + "\n"


def run_ablation(preset: str, modes: list[str], out: Path | None, *, device: torch.device,
                 dtype: torch.dtype, batch: int | None, seq: int | None, warmup: int,
                 repeats: int, seed: int, compile_mode: str | None, count: bool = True,
                 only: list[str] | None = None) -> dict[str, dict[str, RunResult]]:
    """Every mode of the ablation; writes ``<out>/<mode>_<row>.json`` and ``ablation.md``."""
    config = get_preset(preset)
    batch = config.batch_size if batch is None else batch     # None: not given; 0 is refused
    seq = config.max_seq_len if seq is None else seq
    check_workload(modes=modes, batch_size=batch, seq_len=seq, warmup=warmup,
                   max_seq_len=config.max_seq_len, where=f"preset {preset}")
    require_int(repeats, "repeats", 1)
    rows = ablation_rows(compile_mode, device, dtype)
    if only:
        unknown = sorted(set(only) - set(rows))
        if unknown:
            raise UserError(f"unknown ablation row(s) {unknown}; rows are {list(rows)}")
        rows = {name: row for name, row in rows.items() if name in only}
    all_results, tables = {}, []
    for mode in modes:
        models = build_rows(config, rows, seed, device, dtype)   # fresh weights every mode
        results = measure_mode(models, rows, preset=preset, mode=mode, batch=batch, seq=seq,
                               device=device, dtype=dtype, warmup=warmup, repeats=repeats,
                               seed=seed, count=count)
        all_results[mode] = results
        tables.append(format_table(results, device))
        print(tables[-1], flush=True)
        if out is not None:
            for name, result in results.items():
                result.write(Path(out) / f"{mode}_{_slug(name)}.json")
    if out is not None:
        header = (f"# v2 ablation, preset {preset}\n\nGenerated by `python -m "
                  f"benchmarks.ablation`; every number below was measured in this run on "
                  f"{machine_info(device)['device_name']} (torch {torch.__version__}, "
                  f"git {machine_info(device)['git_sha']}). Per-row JSON files sit next to "
                  "this table.\n\n")
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "ablation.md").write_text(header + "\n".join(tables))
    return all_results


@cli_boundary
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_debug_flag(p)
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--modes", default="train,prefill",
                   help="comma-separated workloads: train, prefill, decode")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", default="default", choices=[*COMPILE_MODES, "off"],
                   help="mode of the 'all + compile' row; off drops the row")
    p.add_argument("--rows", default=None, help="comma-separated subset of row names")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-count", action="store_true", help="skip op counts and peak memory")
    p.add_argument("--out", default=None,
                   help="folder for JSON + ablation.md (e.g. benchmarks/results/<machine>/v2)")
    args = p.parse_args(argv)
    device = best_device(args.device)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.out:       # before the run; the values are checked by run_ablation, up front
        check_writable_folder(args.out, "--out")
    run_ablation(args.preset, modes, Path(args.out) if args.out else None, device=device,
                 dtype=resolve_dtype(args.dtype, device), batch=args.batch_size,
                 seq=args.seq_len, warmup=args.warmup, repeats=args.repeats, seed=args.seed,
                 compile_mode=None if args.compile == "off" else args.compile,
                 count=not args.no_count,
                 only=[r.strip() for r in args.rows.split(",")] if args.rows else None)
    print(f"machine: {machine_slug(device)}; results written to {args.out}" if args.out else
          f"machine: {machine_slug(device)}; no --out given, nothing written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
