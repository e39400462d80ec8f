"""``python -m benchmarks run --versions v1,v2,compile --presets tiny --modes train,prefill,decode``.

Gates every version against v1, times them interleaved, and prints the speedup table;
writes table.md, results.csv, kernels.csv, results.json and PNG plots into the run folder.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from version1_baseline import get_preset
from version1_baseline.errors import UserError

from .ceilings import matmul_ceiling, measure_ceilings
from .compare import BenchSettings, Row, run_preset, workload_shape
from .environment import best_device, default_out, machine_info, run_timestamp
from .noise import warning_line
from .plots import write_plots
from .report import markdown_table, write_reports
from .roofline import write_kernel_roofline, write_roofline
from .validation import (ArgumentParser, add_debug_flag, check_modes, check_writable_folder,
                         cli_boundary)
from .versions import parse_names
from .workloads import resolve_dtype


def _plot_all(rows, machine, presets, out: Path) -> list[Path]:
    plots = write_plots(rows, out, machine["device_name"])
    roofline = write_roofline(rows, machine, {p: get_preset(p).to_dict() for p in presets},
                              out / "roofline.png")
    kernels = write_kernel_roofline(rows, machine, out / "roofline_kernels.png")
    return plots + [p for p in (roofline, kernels) if p]


def _replot(folder: Path) -> int:
    """Redraw every plot of a finished run from its results.json (nothing is re-measured)."""
    if not (folder / "results.json").is_file():
        raise UserError(f"plot {folder}: no results.json there; expected the --out folder of "
                        "a `python -m benchmarks run`")
    data = json.loads((folder / "results.json").read_text())
    rows = [Row.from_json(record) for record in data["rows"]]
    plots = _plot_all(rows, data["machine"], data["settings"]["presets"], folder)
    print(f"wrote {', '.join(str(p) for p in plots)}")
    return 0


def _hw_config(name: str) -> str:
    """--hw-config: a named accelerator configuration (checked before any measurement)."""
    from hw_offload.configs import UnknownConfigError, get_config
    try:
        return get_config(name).name
    except UnknownConfigError as exc:
        raise UserError(f"--hw-config: {exc}") from None


def _run(args) -> int:
    names = parse_names(args.versions)
    if "v1" not in names:
        names.insert(0, "v1")    # every speedup is against v1, measured in the same run
    modes = check_modes(m.strip() for m in args.modes.split(",") if m.strip())
    device = best_device(args.device)
    settings = BenchSettings(steps=args.steps, warmup=args.warmup, seq_len=args.seq_len,
                             batch_size=args.batch_size, dtype=resolve_dtype(args.dtype, device),
                             allow_interpreter=args.allow_interpreter)
    if args.quick:
        settings.steps, settings.warmup = min(settings.steps, 5), min(settings.warmup, 1)
        settings.default_seq_cap = 64
    settings.hw_config = _hw_config(args.hw_config)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if not presets:
        raise UserError("--presets is empty; expected comma-separated preset names")
    for preset in presets:    # every setting checked before the first (long) measurement
        workload_shape(preset, modes, settings, flags=True)
    out = check_writable_folder(Path(args.out) if args.out else default_out("bench"), "--out")
    machine = machine_info(device)
    stamp = {"machine": machine["slug"], "torch": machine["torch"], "triton": machine["triton"],
             "git_sha": machine["git_sha"], "timestamp": run_timestamp(), "quick": args.quick}
    ceilings = None
    if not args.no_ceilings:
        ceilings = measure_ceilings(device)
        settings.matmul_ceiling = ceilings.matmul_flops_per_s
        settings.matmul_ceiling_fn = lambda: matmul_ceiling(device)   # again before each table
        machine["ceilings"] = ceilings.to_json()
    rows = []
    # One bar step per (preset, mode, version) row; the postfix names the current stage.
    with tqdm(total=len(presets) * len(modes) * len(names), desc="benchmarks", unit="row",
              file=sys.stderr, disable=args.no_progress) as bar:
        for preset in presets:
            rows += run_preset(names, preset, modes, device, settings,
                               progress=lambda text: bar.set_postfix_str(text, refresh=True),
                               advance=bar.update)
    for row in rows:     # every row says where, with what and when it was measured
        row.__dict__.update(stamp)
    paths = write_reports(rows, machine, out, {
        "versions": names, "presets": presets, "modes": modes, "steps": settings.steps,
        "warmup": settings.warmup, "seq_len": settings.seq_len,
        "batch_size": settings.batch_size, "dtype": str(settings.dtype), "quick": args.quick,
        "hw_config": settings.hw_config})
    plots = _plot_all(rows, machine, presets, out)
    print(markdown_table(rows, machine))
    print(f"wrote {', '.join(str(p) for p in [*paths.values(), *plots])}")
    warning = warning_line([(f"{r.version} {r.preset}/{r.mode}", r.busy) for r in rows])
    if warning:
        print(warning, file=sys.stderr)
    failed = [r for r in rows if r.status in ("FAILED", "ERROR")]
    if not any(r.status in ("ok", "estimated") for r in rows):
        counts = ", ".join(f"{n} {status}" for status, n in Counter(r.status for r in rows).items())
        print(f"error: no row was measured ({counts}); see the detail column of "
              f"{out / 'table.md'}", file=sys.stderr)
        return 1
    return 1 if failed and args.strict else 0


@cli_boundary
def main(argv=None) -> int:
    """Exit 2 with one line for a bad input (``--debug``: its traceback), 1 on a bug or when
    no row could be measured."""
    p = ArgumentParser(prog="python -m benchmarks")
    add_debug_flag(p)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="gate, time and tabulate versions side by side")
    run.add_argument("--versions", default="v1,v2,v3,v4,compile,rtl")
    run.add_argument("--presets", default="tiny")
    run.add_argument("--modes", default="train,prefill,decode")
    run.add_argument("--steps", type=int, default=10, help="timed repeats per version (>= 10 "
                     "for reported results)")
    run.add_argument("--warmup", type=int, default=3)
    run.add_argument("--seq-len", type=int, default=None)
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--device", default="auto")
    run.add_argument("--hw-config", default="chip16",
                     help="accelerator configuration of the rtl rows (hw_offload.configs.NAMED: "
                          "chip16, edge16, fpga32)")
    run.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    run.add_argument("--quick", action="store_true",
                     help="few steps and short sequences: a smoke run, not for reporting")
    run.add_argument("--allow-interpreter", action="store_true",
                     help="time Triton versions under TRITON_INTERPRET on CPU (very slow)")
    run.add_argument("--no-ceilings", action="store_true",
                     help="skip measuring copy bandwidth and matmul rate")
    run.add_argument("--strict", action="store_true", help="exit 1 if any version FAILED/ERROR")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--out", default=None, help="default: results/<date-time>/bench")
    plot = sub.add_parser("plot", help="redraw the plots of a run folder from its results.json")
    plot.add_argument("folder")
    sub.add_parser("readme", help="regenerate the README's results section from "
                   "benchmarks/results/")
    from .scaling import add_parser as add_scaling_parser, main as scaling_main
    add_scaling_parser(sub)
    to_hf = sub.add_parser("to-hf", help="a --save-checkpoint folder as a Hugging Face folder")
    to_hf.add_argument("checkpoint")
    to_hf.add_argument("out")
    for command in sub.choices.values():    # --debug is accepted after any subcommand
        add_debug_flag(command)
    args = p.parse_args(argv)
    if args.command == "scaling":
        return scaling_main(args)
    if args.command == "to-hf":
        from .parallel import export_checkpoint
        return export_checkpoint(args.checkpoint, args.out)
    if args.command == "plot":
        return _replot(Path(args.folder))
    if args.command == "readme":
        from .readme_results import update_readme
        print("README.md updated" if update_readme() else "README.md already up to date")
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
