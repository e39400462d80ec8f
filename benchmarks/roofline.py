"""Roofline placement of each version, and of each op/kernel: FLOP/s against FLOP per byte.

The FLOPs are counted (v1 eager, FlopCounterMode) and the times measured. The bytes are a
MODEL, not a measurement: the minimum traffic a step cannot avoid (every weight read once,
the KV cache read or written once, token ids and logits once; for training, also gradients
and AdamW's two moment buffers read and written once). It is the x axis of the classic
roofline, where a real kernel's traffic can only be larger. The plot says so on its axis.

The per-op plot (roofline_kernels.png) uses ``benchmarks.kernel_points``: FLOPs counted per
op, time measured per op in one profiled step, and its own per-op minimum-traffic model.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .kernel_points import (flop_per_byte, flops_per_s, is_placed,  # noqa: E402
                            runs_in_interpreter, unplaced_summary)

_FP32 = 4


def minimum_bytes(config: dict, mode: str, batch: int, seq: int, weight_bytes: int = _FP32) -> int:
    """Unavoidable bytes moved by one step of ``mode`` (see the module docstring)."""
    h, layers = config["hidden_size"], config["num_layers"]
    kv_dim = config["num_kv_heads"] * (h // config["num_heads"])
    vocab = config["vocab_size"]
    head = 0 if config["tie_word_embeddings"] else vocab * h
    params = (vocab * h + head + h + layers * (2 * h * h + 2 * h * kv_dim
                                               + 3 * h * config["intermediate_size"] + 2 * h))
    tokens = batch * (1 if mode == "decode" else seq)
    logits = tokens * vocab * _FP32
    if mode == "train":
        # read weights (fwd), read again (bwd), write grads; AdamW reads p, g, m, v, writes p, m, v
        return params * weight_bytes * 3 + params * _FP32 * 7 + logits * 2
    # prefill writes seq positions of K and V per layer; decode reads seq (seq-1 cached + new)
    kv = layers * 2 * batch * seq * kv_dim * weight_bytes
    return params * weight_bytes + kv + logits + tokens * 8


def _ceilings(ax, ceilings: dict, xs: list[float]) -> None:
    """The measured roofs over the x range of ``xs``, log-log axes."""
    peak, bandwidth = ceilings["matmul_flops_per_s"], ceilings["copy_bytes_per_s"]
    lo, hi = min(xs) / 4, max(xs) * 4
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak, bandwidth * x) for x in grid], color="black", lw=1,
            label=f"measured ceilings: copy {bandwidth / 1e9:.0f} GB/s, "
                  f"{ceilings['matmul_dtype']} matmul {peak / 1e9:.0f} GFLOP/s")
    ax.axvline(peak / bandwidth, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")


def write_roofline(rows: list, machine: dict, configs: dict[str, dict], path: Path) -> Path | None:
    """One point per measured (version, preset, mode) under the measured ceilings.

    Rows timed in the Triton interpreter are left out: the interpreter's time says nothing
    about the kernels.
    """
    ceilings = machine.get("ceilings")
    points = [r for r in rows if r.status == "ok" and r.achieved_flops_per_s
              and not runs_in_interpreter(r.extra)]
    if not ceilings or not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = []
    for r in points:
        intensity = r.workload_flops / minimum_bytes(configs[r.preset], r.mode, r.batch_size,
                                                     r.seq_len)
        xs.append(intensity)
        busy = bool(getattr(r, "busy", None))
        ax.scatter(intensity, r.achieved_flops_per_s, s=25,
                   edgecolors="#C44E52" if busy else "face", linewidths=1.5 if busy else 0)
        ax.annotate(f"{r.version} {r.preset}/{r.mode}" + (" BUSY" if busy else ""),
                    (intensity, r.achieved_flops_per_s),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    _ceilings(ax, ceilings, xs)
    ax.set_xlabel("FLOP per byte of MINIMUM traffic (a model of the bytes, not a measurement)")
    ax.set_ylabel("achieved FLOP/s (counted FLOPs / measured median)")
    ax.set_title(f"Roofline: {machine['device_name']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_LABELLED = 4   # per panel: the slowest placed ops get a name, the rest stay dots
_OFFSETS = [(4, 3), (4, -9), (-10, 3), (-10, -9)]   # points: where each number goes


def _ms(t: float) -> str:
    return f"{t:.0f} ms" if t >= 10 else f"{t:.2g} ms"


def _above_matmul_caption(above: list) -> str:
    """Why points sit above the matmul ceiling, naming them; '' when none does."""
    if not above:
        return "No op sits above the matmul ceiling."
    worst = max(above, key=lambda a: a[4])
    return (f"{len(above)} op(s) sit above the matmul ceiling (at most {worst[4]:.2f}x: "
            f"{worst[2]} {worst[3]}, {worst[0]} / {worst[1]}). The ceiling is one square "
            "matmul timed once before the run; a GEMM of another shape, timed in the profiled "
            "step, can run faster (a shape the BLAS library blocks better, or a higher boost "
            "clock), and a profiled op's time excludes the launch overhead the ceiling's "
            "timer includes. It is a measured reference, not a hardware peak.")


def write_kernel_roofline(rows: list, machine: dict, path: Path) -> Path | None:
    """One panel per (preset, mode): every op/kernel with counted FLOPs, a colour per version.

    Points come from one profiled step per row (``benchmarks.kernel_points``): counted
    FLOPs over the op's measured time, against FLOPs per byte of its minimum-traffic model.
    Ops with no FLOP count cannot be placed; each legend entry says how many there were and
    what share of that version's op time they took.
    """
    ceilings = machine.get("ceilings")
    kernel_rows = [r for r in rows if r.status == "ok" and r.kernels
                   and not runs_in_interpreter(r.extra)]
    if not ceilings or not any(is_placed(k) for r in kernel_rows for k in r.kernels):
        return None
    panels: dict[tuple[str, str], list] = {}
    for r in kernel_rows:
        if any(is_placed(k) for k in r.kernels):
            panels.setdefault((r.preset, r.mode), []).append(r)
    # (preset, mode) pairs with nothing to place get no panel, only a line in the caption
    empty = sorted({(r.preset, r.mode) for r in kernel_rows} - set(panels))
    versions = list(dict.fromkeys(r.version for r in kernel_rows))
    colours = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(versions)}
    # presets down, modes across (as in the bar plots), when that fills the grid
    modes = list(dict.fromkeys(mode for _, mode in panels))
    cols = len(modes) if len(panels) % len(modes) == 0 else min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.6 * cols, 5.4 * nrows + 1.2), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    above = []   # (preset, mode, version, op, factor over the matmul ceiling)
    for ax, ((preset, mode), group) in zip(axes.flat, panels.items()):
        placed = []
        for r in group:
            mine = [k for k in r.kernels if is_placed(k)]
            n_off, share_off = unplaced_summary(r.kernels)
            # Time outside every op (Python, or torch.compile's fused kernels, which the
            # profiler does not name on CPU) is in no record: say how much the ops cover.
            cover = (f"; ops = {100 * sum(k['time_ms'] for k in r.kernels) / r.kernel_step_ms:.0f}"
                     "% of the step" if r.kernel_step_ms else "")
            ax.scatter([flop_per_byte(k) for k in mine], [flops_per_s(k) for k in mine], s=14,
                       color=colours[r.version], alpha=0.8,
                       label=f"{r.version}: {len(mine)} ops placed; {n_off} without a FLOP "
                             f"count = {100 * share_off:.0f}% of op time{cover}")
            placed += [(r.version, k) for k in mine]
        above += [(preset, mode, version, k["name"].removeprefix("aten::"),
                   flops_per_s(k) / ceilings["matmul_flops_per_s"]) for version, k in placed
                  if flops_per_s(k) > ceilings["matmul_flops_per_s"]]
        # The slowest ops of all versions are often the same GEMM at the same spot: number
        # them there and name them in the top-left corner, which is above the roof and so
        # always empty.
        slowest = sorted(placed, key=lambda vk: -vk[1]["time_ms"])[:_LABELLED]
        names = []
        for i, (version, k) in enumerate(slowest, 1):
            ax.annotate(str(i), (flop_per_byte(k), flops_per_s(k)), fontsize=7,
                        xytext=_OFFSETS[(i - 1) % len(_OFFSETS)], textcoords="offset points",
                        color=colours[version], weight="bold")
            names.append(f"{i}  {version} {k['name'].removeprefix('aten::')}: "
                         f"{_ms(k['time_ms'])}, {flops_per_s(k) / 1e9:.3g} GFLOP/s")
        ax.text(0.02, 0.98, "slowest placed ops\n" + "\n".join(names), transform=ax.transAxes,
                fontsize=6.5, va="top", family="monospace")
        _ceilings(ax, ceilings, [flop_per_byte(k) for _, k in placed])
        ax.set_title(f"{preset} / {mode}: ops with counted FLOPs (slowest {_LABELLED} named)",
                     fontsize=9)
        ax.set_xlabel("FLOP per byte of the op's inputs + outputs (a minimum-traffic MODEL)",
                      fontsize=7)
        ax.set_ylabel("FLOP/s (counted FLOPs / op time in one profiled step)", fontsize=7)
        # below the axes: inside, it would cover the low-intensity elementwise ops
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    fig.suptitle(f"Per-op roofline: {machine['device_name']} (numbers in kernels.csv)", fontsize=10)
    caption = ("The copy ceiling is a copy larger than every cache: small ops whose data stays "
               "in cache can sit above it. " + _above_matmul_caption(above))
    if empty:
        caption += (" No op with a counted FLOP total (so no panel): "
                    + ", ".join(f"{p} / {m}" for p, m in empty) + ".")
    fig.text(0.01, 0.005, textwrap.fill(caption, 45 * cols), fontsize=7.5, va="bottom")
    fig.tight_layout(rect=(0, 1.0 / (5.4 * nrows + 1.2), 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
