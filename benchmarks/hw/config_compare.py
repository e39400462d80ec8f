"""Per accelerator configuration: ESTIMATED time per step against version 1 MEASURED here.

    python -m benchmarks.hw --configs chip16,edge16,fpga32 [--cycle-model fpga32]
                            [--repeats 20] [--presets chip16 tiny] [--out DIR]

For each configuration (hw_offload.configs) and each of the chip16 and tiny presets, prefill
(max_seq_len tokens from position 0) and decode (one token at position max_seq_len-1), batch 1,
and decode at the preset's batch when larger (tiny: 4):

* ESTIMATED accelerator time per step: version 1 through ``torch.compile(backend="rtl")`` on that
  configuration (benchmarks.rtl_estimate, as the speedup table's rtl rows), counted cycles
  priced at the configuration's clock plus the host-link model; decoder blocks only;
* cycles by unit (benchmarks/hw/cycle_breakdown.py): total cycles, each unit's busy cycles and
  its share of the total (the units run concurrently, so these need not add up), cycles with two
  or more units busy, with all three, and with none (stall); PE utilization (useful MACs /
  (N^2 x cycles)) and the host link's share of the estimated time;
* MEASURED in the same run: version 1 (float, eager, one CPU thread) for the same step, median
  of ``--repeats`` after 5 warm-up calls, and the speedup estimate / measurement.

Cycles are counted by the configuration's Verilator build, or, for the configurations named by
``--cycle-model`` (default fpga32: its 32x32 build takes longer than this run), by
hw_offload/cycle_model.py over the golden model's run; each row names its source. A step that
does not fit a configuration's SRAMs is a row with the reason, not a number.
"""
from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import torch

from benchmarks.environment import machine_info
from benchmarks.hw import cycle_breakdown as cb
from benchmarks.hw.bench_offload import useful_macs, v1_measured
from benchmarks.rtl_estimate import compile_rtl, estimate_step
from hw_offload.configs import get_config
from hw_offload.cost import HostLink
from hw_offload.golden_cycles import COUNTER_SOURCE
from hw_offload.sram_plan import SramFitError
from version1_baseline import TinyLlama, get_preset

PRESETS = ("chip16", "tiny")


def steps_of(preset_cfg) -> list[tuple[str, int]]:
    """(mode, batch): prefill and decode at batch 1 (the issue's comparison), and decode at the
    preset's own batch (tiny: 4) when that is larger."""
    steps = [("prefill", 1), ("decode", 1)]
    return steps + ([("decode", preset_cfg.batch_size)] if preset_cfg.batch_size > 1 else [])


def counter_source(target: str) -> str:
    return {"verilator": "Verilator build of the configuration (fast variant)",
            "cycle_model": COUNTER_SOURCE}[target]


def estimate_row(compiled, accel, preset_cfg, mode: str, batch: int) -> dict:
    """One configuration's estimate of one step, or its reason for not fitting."""
    seq = preset_cfg.max_seq_len
    try:
        est = estimate_step(compiled, mode, batch, seq)
    except SramFitError as exc:
        return {"status": "n/a", "detail": f"SramFitError: {exc}"}
    est.pop("blocks")
    step, units = est["step"], est["unit_cycles"]
    tokens = seq if mode == "prefill" else 1
    past = 0 if mode == "prefill" else seq - 1
    macs = useful_macs(preset_cfg, tokens, past) * preset_cfg.num_layers * batch
    return {"status": "estimated", "weights": est["plan"]["weights"],
            "plan_notes": est["plan"]["notes"], "device_runs": est["device_runs"],
            "cycles": units, "compute_ms": step["compute_s"] * 1e3,
            "link_ms": step["link_s"] * 1e3, "total_ms": step["total_s"] * 1e3,
            "host_link_share": step["link_s"] / step["total_s"],
            "pe_utilization": macs / (accel.n ** 2 * units["cycles"]),
            "bytes_to_device": step["bytes_to_device"], "transactions": step["transactions"]}


def run(configs: list[str], cycle_model: set[str], repeats: int, link: HostLink,
        presets=PRESETS) -> dict:
    torch.set_num_threads(1)
    accels = [get_config(c) for c in configs]
    res = {"machine": machine_info(torch.device("cpu")), "torch_threads": 1,
           "load_average_start": os.getloadavg(), "link": link.label(),
           "configs": [a.to_dict() for a in accels], "steps": []}
    for preset in presets:
        cfg = get_preset(preset)
        torch.manual_seed(0)
        model = TinyLlama(cfg).eval()
        steps = steps_of(cfg)
        for mode, batch in steps:    # version 1, measured in this run
            t = v1_measured(model, mode, cfg.max_seq_len, repeats, batch)["step_ms"]
            res["steps"].append({"preset": preset, "mode": mode, "batch": batch,
                                 "seq_len": cfg.max_seq_len, "v1_measured_ms": t, "configs": {}})
        for accel in accels:
            target = "cycle_model" if accel.name in cycle_model else "verilator"
            compiled = compile_rtl(model, target=target, config=accel, link=link)
            for mode, batch in steps:
                row = next(s for s in res["steps"] if (s["preset"], s["mode"], s["batch"])
                           == (preset, mode, batch))
                t0 = time.perf_counter()
                est = estimate_row(compiled, accel, cfg, mode, batch)
                est.update(target=target, counter_source=counter_source(target),
                           clock_mhz=accel.clock_mhz, wall_s=time.perf_counter() - t0)
                if est["status"] == "estimated":
                    est["speedup_vs_v1"] = row["v1_measured_ms"]["median"] / est["total_ms"]
                row["configs"][accel.name] = est
                print(f"{preset} {mode} b{batch} {accel.name}: {est['status']} "
                      f"{est.get('total_ms', float('nan')):.4f} ms ({target})", flush=True)
    res["load_average_end"] = os.getloadavg()
    return res


def busy_warning(res: dict) -> list[str]:
    """A warning paragraph when the machine had more runnable work than cores during the run:
    version 1's measured times are then inflated, and every speedup over it overstated."""
    cores = os.cpu_count() or 1
    peak = max(res["load_average_start"][0], res["load_average_end"][0])
    if peak <= cores:
        return []
    return [f"**BUSY machine**: the 1-minute load average reached {peak:.1f} on {cores} cores "
            "during this run, so version 1's MEASURED times are inflated by other processes and "
            "the ESTIMATED speedups over them are overstated; rerun on a quiet machine before "
            "quoting a speedup.", ""]


def to_markdown(res: dict) -> str:
    m = res["machine"]
    la0, la1 = res["load_average_start"], res["load_average_end"]
    lines = ["# hw_offload: accelerator configurations, ESTIMATED vs version 1 MEASURED", "",
             f"Machine: {m['device_name']}, host {m['host']}, torch {m['torch']}, git {m['git_sha']}; "
             f"load average (1/5/15 min) {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f} at the start, "
             f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} at the end (a shared machine).", "",
             *busy_warning(res),
             "Accelerator times are ESTIMATED: counted cycles priced at each configuration's clock "
             f"plus the host link ({res['link']}); decoder blocks only (embedding, final norm and "
             "LM head stay on the host). Version 1 (float, eager, 1 CPU thread) is MEASURED in "
             "the same run: median after 5 warm-up calls. Cycle counts come from the source named "
             "per configuration below.", "", "## Configurations", "",
             "| config | array | SRAM (A / W / ACC) | clock MHz | cycles counted by |",
             "|---|---|---|---|---|"]
    sources = {}
    for s in res["steps"]:
        for name, e in s["configs"].items():
            sources[name] = e["counter_source"]
    for c in res["configs"]:
        kib = lambda rows, width: rows * c["n"] * width // 1024  # noqa: E731
        lines.append(f"| {c['name']} | {c['n']}x{c['n']} | {kib(c['a_rows'], 1)} / "
                     f"{kib(c['w_rows'], 1)} / {kib(c['acc_rows'], 4)} KiB | {c['clock_mhz']:g} | "
                     f"{sources.get(c['name'], '-')} |")
    lines += ["", "## Time per step", "",
              "| preset | mode | batch | config | v1 MEASURED ms | ESTIMATED ms (compute + link) | "
              "ESTIMATED speedup vs v1 | PE util. | host-link share | weights |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s in res["steps"]:
        v1 = s["v1_measured_ms"]["median"]
        for name, e in s["configs"].items():
            head = f"| {s['preset']} | {s['mode']} | {s['batch']} | {name} | {v1:.4f} |"
            if e["status"] != "estimated":
                lines.append(f"{head} n/a: {e['detail']} | | | | |")
                continue
            lines.append(f"{head} {e['total_ms']:.4f} ({e['compute_ms']:.4f} + {e['link_ms']:.4f}) | "
                         f"{e['speedup_vs_v1']:.2f}x | {e['pe_utilization']:.1%} | "
                         f"{e['host_link_share']:.1%} | {e['weights']} |")
    lines += ["", "## Counted cycles by unit", "", cb.MD_NOTE, "",
              "| preset | mode | batch | config | " + " | ".join(cb.MD_HEAD) + " |",
              "|---|---|---|---|" + "---|" * len(cb.MD_HEAD)]
    for s in res["steps"]:
        for name, e in s["configs"].items():
            if e["status"] == "estimated":
                lines.append(f"| {s['preset']} | {s['mode']} | {s['batch']} | {name} | "
                             + " | ".join(cb.md_cells(e["cycles"])) + " |")
    return "\n".join(lines) + "\n"


# The plot: per configuration, one wide bar of the step's total cycles stacked by how many units
# were busy (none = stall, exactly one, two, all three), and beside it one thin bar per unit
# (array, vector, DMA busy) on the same axis. Why this shape: with overlap the busy counts no
# longer add up to the total, so stacking them (the old plot) would overshoot the real time.
# A hardware engineer asks two things first, and each is read off one bar: which unit bounds
# the step (the thin bar closest to the total's height; its ratio is that unit's utilization)
# and how much of the time the units actually overlap (the dark part of the wide bar).
TIME_CLASSES = {"none": ("no unit busy (stall)", "#BDBDBD"),
                "one": ("exactly 1 unit busy", "#C6DBEF"),
                "two": ("2 units busy", "#6BAED6"),
                "three": ("all 3 busy", "#08519C"),
                "busy_any": ("≥1 busy (overlap not reported)", "#FFFFFF")}
UNIT_COLORS = {"array_busy": "#C44E52", "vector_busy": "#DD8452", "dma_busy": "#55A868"}
WIDE, THIN = 0.4, 0.14          # bar widths; a configuration spans about 0.85 of its slot


def plot_segments(cycles: dict) -> list[tuple[float, float, float, str]]:
    """The bars of one configuration's step: (x offset, bottom, height, key), key one of
    ``TIME_CLASSES`` (the stacked bar; its heights add up to the step's cycles) or of
    ``UNIT_COLORS`` (a unit's busy cycles, from the floor). ``cycles``: a
    ``cycle_breakdown.breakdown`` (checked again here)."""
    b = cb.breakdown(cycles)
    split = b["by_busy_units"]
    stack = ([(k, split[k]) for k in cb.BY_BUSY_UNITS] if split["one"] is not None
             else [("none", split["none"]), ("busy_any", b["busy_any"])])
    segs, bottom = [], 0
    for key, h in stack:
        segs.append((-WIDE / 2 - 0.02, bottom, h, key))
        bottom += h
    for j, k in enumerate(cb.BUSY):
        segs.append((THIN / 2 + 0.01 + j * THIN, 0, b[k], k))
    return segs


def plot_cycles(res: dict, path: Path) -> Path:
    """One panel per step, configurations across (see ``plot_segments``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = res["steps"]
    fig, axes = plt.subplots(1, len(steps), figsize=(2.9 * len(steps) + 1.9, 4.4), squeeze=False)
    labels = {**{k: v[0] for k, v in TIME_CLASSES.items()},
              **{k: f"{cb.UNIT_LABEL[k]} busy" for k in UNIT_COLORS}}
    colors = {**{k: v[1] for k, v in TIME_CLASSES.items()}, **UNIT_COLORS}
    for ax, s in zip(axes[0], steps):
        names = list(s["configs"])
        for i, name in enumerate(names):
            e = s["configs"][name]
            if e["status"] != "estimated":
                ax.annotate("n/a\n(does not fit)", (i, 0), ha="center", va="bottom", fontsize=7)
                continue
            for dx, bottom, h, key in plot_segments(e["cycles"]):
                ax.bar(i + dx, h, bottom=bottom, width=THIN if key in UNIT_COLORS else WIDE,
                       color=colors[key], edgecolor="black", linewidth=0.5,
                       hatch="//" if key == "busy_any" else None, label=labels[key])
            src = "cm" if e["target"] == "cycle_model" else "rtl"
            total = e["cycles"]["cycles"]
            ax.annotate(f"{total:,}\n{src}", (i - WIDE / 2 - 0.02, total), ha="center",
                        va="bottom", fontsize=6)
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(0, 1.2 * max([e["cycles"]["cycles"] for e in s["configs"].values()
                                  if e["status"] == "estimated"] + [1]))
        ax.set_title(f"{s['preset']} / {s['mode']} / batch {s['batch']}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    axes[0][0].set_ylabel("counted cycles per step", fontsize=8)
    handles, seen = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen:
                handles.append(h)
                seen.append(lab)
    fig.legend(handles, seen, fontsize=7, loc="lower center", ncol=4, frameon=False)
    note = ("Wide bar: the step's counted cycles split by how many units were busy (adds up to "
            "the total). Thin bars: each unit's busy cycles on the same axis (height / total = "
            "its utilization). rtl: the configuration's Verilator build; cm: the cycle model over "
            "the golden model. Times derived from them are ESTIMATED at each configuration's "
            f"clock. {res['machine']['device_name']}.")
    fig.suptitle("Accelerator configurations: counted cycles, by what was busy\n"
                 + textwrap.fill(note, int(fig.get_figwidth() * 15)), fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(configs: str, cycle_model: str, repeats: int, out: Path, presets=PRESETS) -> None:
    names = [c.strip() for c in configs.split(",") if c.strip()]
    cm = {c.strip() for c in cycle_model.split(",") if c.strip()}
    for name in names + sorted(cm):
        get_config(name)              # a bad name fails before anything runs
    res = run(names, cm, repeats, HostLink(), presets)
    out.mkdir(parents=True, exist_ok=True)
    (out / "configs_bench.json").write_text(json.dumps(res, indent=2))
    md = to_markdown(res)
    (out / "configs_bench.md").write_text(md)
    png = plot_cycles(res, out / "configs_cycles.png")
    print(md)
    print(f"wrote {out}/configs_bench.json, configs_bench.md and {png.name}")
