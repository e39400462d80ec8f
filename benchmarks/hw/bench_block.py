"""Measure the simulated accelerator and set it beside version 1 on this CPU.

* simulation speed: simulated cycles per wall-clock second of the fast Verilator build;
* systolic-array utilization of every GEMM of the block: useful MACs / (N^2 * array cycles),
  each GEMM run alone so its array cycles are its own;
* cycles per block (weights resident) at chip16 and tiny, and that time at a stated clock;
* version 1's float block at chip16 on this CPU, per sample, next to the accelerator estimate.

Every number written is measured in this run, except the 21.877 ms figure for a pure-Python
16x16 block, which the project's original hardware brief quoted; it is labelled as quoted and
was not reproduced here.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.environment import default_out, machine_info
from benchmarks.hw import cycle_breakdown as cb
from hw_offload.compiler import block_program
from hw_offload.driver import Accelerator, trace_variant
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import OP_GEMM, OP_HALT, Insn, encode_program
from hw_offload.calibrate import quantize_block
from hw_offload.quant import quantize
from hw_offload.testing import run_one_block
from version1_baseline import TinyLlama, get_preset

# Quoted by the project's original hardware brief for "the scaled-down 16x16 transformer
# block ... in Python"; no such implementation is in this repository, so it is not measured.
QUOTED_PYTHON_MS = 21.877


def build_block(preset: str, seed: int = 0):
    cfg = get_preset(preset)
    torch.manual_seed(seed)
    model = TinyLlama(cfg).eval()
    layer = model.model.layers[0]
    with torch.no_grad():  # unit-scale weights, as in tests/test_rtl_block.py
        for p in layer.parameters():
            if p.dim() == 2:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
            else:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    s = cfg.max_seq_len
    cos, sin = model.model.rotary_emb(torch.arange(s))
    calib = torch.randn(4, s, cfg.hidden_size).numpy()
    x = torch.randn(s, cfg.hidden_size).numpy()
    return cfg, layer, cos, sin, calib, x


def bench_preset(acc: Accelerator, preset: str, clock_mhz: float) -> dict:
    cfg, layer, cos, sin, calib, x = build_block(preset)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    y_rtl, c, session = run_one_block(acc, qb, x_q)
    t0 = time.perf_counter()     # a second, identical run, timed without the weight load
    session.run_block(0, x_q[None], 0, keep_kv=False)
    wall = time.perf_counter() - t0
    y_gold, _, _ = run_one_block(GoldenAccelerator(acc.config), qb, x_q)
    n = acc.config.n
    plan, infos = session.plan, []
    insns = block_program(qb, session.layouts[0], session.rescales[0], acc.config, plan.transient,
                          cfg.max_seq_len, 0, plan.scratch_a, plan.x_dram, plan.y_dram, gemms=infos)
    gemms = []
    for g, insn in zip(infos, [i for i in insns if i.op == OP_GEMM]):
        acc.write_program(encode_program([insn, Insn(OP_HALT)]))
        gc = acc.run()
        gemms.append({"name": g.name, "m": g.m, "k": g.k, "n": g.n, "useful_macs": g.useful_macs,
                      "array_cycles": gc.array_busy,
                      "utilization": g.useful_macs / (n * n * gc.array_busy),
                      "padded_utilization": g.m * g.k * g.n / (n * n * gc.array_busy)})
    return {
        "preset": preset, "seq_len": cfg.max_seq_len, "hidden": cfg.hidden_size,
        "heads": cfg.num_heads, "kv_heads": cfg.num_kv_heads, "intermediate": cfg.intermediate_size,
        "rtl_equals_golden": bool(np.array_equal(y_rtl, y_gold)),
        "counters": c.to_dict(), "cycle_breakdown": cb.breakdown(c),
        "weight_load_counters": session.setup_records[0].counters.to_dict(),
        "block_time_us_at_clock": c.cycles / clock_mhz,
        "sim_wall_s": wall, "sim_cycles_per_s": c.cycles / wall,
        "gemms": gemms,
    }


def trace_block(preset: str, path: Path) -> Path:
    """Write a waveform of one block step of ``preset`` (prefill, weights already resident) to
    ``path``; the extension (.fst / .vcd) picks the traced build. The weight load is not traced:
    it is host writes only, and would dwarf the step."""
    cfg, layer, cos, sin, calib, x = build_block(preset)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    with Accelerator(trace_variant(path)) as acc:
        _, _, session = run_one_block(acc, qb, x_q)   # loads the weights
        acc.trace(path)
        session.run_block(0, x_q[None], 0, keep_kv=False)
        acc.close_trace()
    return path


def v1_chip16_cpu(reps: int = 2000) -> dict:
    cfg, layer, cos, sin, _, x = build_block("chip16")
    xt = torch.tensor(x, dtype=torch.float32)[None]
    torch.set_num_threads(1)
    with torch.no_grad():
        for _ in range(100):
            layer(xt, cos, sin)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                layer(xt, cos, sin)
            times.append((time.perf_counter() - t0) / reps)
    return {"batch": 1, "seq_len": cfg.max_seq_len, "threads": 1,
            "ms_per_sample_median": statistics.median(times) * 1e3,
            "ms_per_sample_min": min(times) * 1e3, "repeats": f"5 x {reps}"}


def to_markdown(res: dict) -> str:
    m, clk = res["machine"], res["clock_mhz"]
    lines = ["# hw_offload accelerator benchmark", "",
             f"Machine: {m['device_name']} (host {m['host']}), Python {m['python']}, "
             f"torch {m['torch']}, git {m['git_sha']}. Simulator: Verilator fast build "
             f"({res['build_flags']}). Array N = {res['n']}.", "",
             "## Cycles per decoder block (weights resident in SRAM)", "", cb.MD_NOTE, "",
             "| preset | S | hidden | " + " | ".join(cb.MD_HEAD) + " | bytes in/out | "
             f"time at {clk:g} MHz | RTL == golden |",
             "|---|---|---|" + "---|" * len(cb.MD_HEAD) + "---|---|---|"]
    for p in res["presets"]:
        c = p["counters"]
        lines.append(f"| {p['preset']} | {p['seq_len']} | {p['hidden']} | "
                     + " | ".join(cb.md_cells(c)) + " | "
                     f"{c['bytes_in']}/{c['bytes_out']} | {p['block_time_us_at_clock']:.2f} us | "
                     f"{p['rtl_equals_golden']} |")
    lines += ["", "Weight load (once, DRAM -> weight SRAM): " + ", ".join(
        f"{p['preset']} {p['weight_load_counters']['cycles']} cycles / "
        f"{p['weight_load_counters']['bytes_in']} bytes" for p in res["presets"]), "",
        "## Simulation speed", "", "| preset | simulated cycles | wall s | cycles/s |", "|---|---|---|---|"]
    for p in res["presets"]:
        lines.append(f"| {p['preset']} | {p['counters']['cycles']} | {p['sim_wall_s']:.3f} | "
                     f"{p['sim_cycles_per_s']:.3g} |")
    lines += ["", "## Systolic-array utilization per GEMM", "",
              "useful MACs / (N^2 x array cycles); 'padded' counts the zero-padded head lanes too.",
              "", "| preset | GEMM | M x K x N (padded) | array cycles | utilization | padded |",
              "|---|---|---|---|---|---|"]
    for p in res["presets"]:
        for g in p["gemms"]:
            lines.append(f"| {p['preset']} | {g['name']} | {g['m']}x{g['k']}x{g['n']} | "
                         f"{g['array_cycles']} | {g['utilization']:.1%} | {g['padded_utilization']:.1%} |")
    v1, chip = res["v1_chip16_cpu"], res["presets"][0]
    lines += ["", "## chip16 block: accelerator estimate vs version 1 on this CPU", "",
              "| what | time per sample | source |", "|---|---|---|",
              f"| accelerator, {chip['counters']['cycles']} cycles at {clk:g} MHz | "
              f"{chip['block_time_us_at_clock'] / 1e3:.4f} ms | measured cycles (Verilator) |",
              f"| version 1 float block, CPU, 1 thread | {v1['ms_per_sample_median']:.4f} ms | "
              f"measured here (median of {v1['repeats']}) |",
              f"| Python 16x16 block | {QUOTED_PYTHON_MS} ms | quoted by the project's hardware brief (a pure-Python block), not measured here |", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    cpu = torch.device("cpu")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="default: results/<date-time>/hw; to refresh the committed results "
                         "pass --out benchmarks/results/<machine>/hw")
    ap.add_argument("--clock-mhz", type=float, default=200.0)
    ap.add_argument("--presets", nargs="+", default=["chip16", "tiny"])
    ap.add_argument("--trace", type=Path, default=None, metavar="FILE",
                    help="only write a waveform (FILE.fst or FILE.vcd) of one block step of "
                         "--trace-preset, and skip the benchmark")
    ap.add_argument("--trace-preset", default="chip16")
    ap.add_argument("--configs", default=None, metavar="NAMES",
                    help="instead: the per-configuration comparison (benchmarks/hw/config_compare) "
                         "of these comma-separated hw_offload.configs names, e.g. "
                         "chip16,edge16,fpga32")
    ap.add_argument("--cycle-model", default="fpga32", metavar="NAMES",
                    help="with --configs: configurations whose cycles the cycle model counts "
                         "over the golden model instead of a Verilator build (default fpga32)")
    ap.add_argument("--repeats", type=int, default=20,
                    help="with --configs: timed version-1 repeats per step")
    args = ap.parse_args(argv)
    if args.configs is not None:
        from hw_offload.configs import UnknownConfigError

        from .config_compare import main as compare_main
        try:
            compare_main(args.configs, args.cycle_model, args.repeats, args.out or default_out("hw"),
                         args.presets)
        except UnknownConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return
    if args.trace:
        print(f"wrote {trace_block(args.trace_preset, args.trace)}")
        return
    args.out = args.out or default_out("hw")
    from hw_offload.build import VARIANT_FLAGS
    res = {"machine": machine_info(cpu), "clock_mhz": args.clock_mhz,
           "build_flags": " ".join(VARIANT_FLAGS["fast"])}
    with Accelerator("fast") as acc:
        res["n"] = acc.config.n
        res["presets"] = [bench_preset(acc, p, args.clock_mhz) for p in args.presets]
    res["v1_chip16_cpu"] = v1_chip16_cpu()
    res["quoted_python_ms_per_sample"] = {"value": QUOTED_PYTHON_MS, "source": "the project's original hardware brief (external, not measured)"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hw_bench.json").write_text(json.dumps(res, indent=2))
    (args.out / "hw_bench.md").write_text(to_markdown(res))
    print(to_markdown(res))
    print(f"wrote {args.out}/hw_bench.json and hw_bench.md")
