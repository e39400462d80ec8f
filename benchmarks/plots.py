"""Matplotlib PNGs of harness rows: speedup per mode, kernel launches, peak memory.

Only rows with status "ok" (measured) or "estimated" (the accelerator) are drawn; a version
that did not run has no bar. What a reader needs to trust a bar is on the bar:

* timed quantities carry p10-p90 error bars from the row's own repeats;
* estimated bars are hatched and their tick says "estimated";
* bars measured on a busy machine (``benchmarks.noise``) have a red edge and say "BUSY".

Panels form a grid, one row per preset and one column per mode, so two presets stay readable.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only; no display on these machines
import matplotlib.pyplot as plt  # noqa: E402

_MEASURED, _ESTIMATED, _BUSY_EDGE = "#4C72B0", "#B0B0B0", "#C44E52"


def bar_label(row) -> str:
    """The tick under a row's bar: the version, and what makes it not a plain measurement."""
    label = row.version
    if row.status == "estimated":
        label += "\nestimated"
    if getattr(row, "busy", None):
        label += "\nBUSY"
    return label


def time_spread(row, value: float) -> tuple[float, float] | None:
    """(below, above) error-bar lengths for ``value``, a quantity proportional to 1 / time.

    Speedup and achieved rate both scale as median / time, so the row's p10-p90 step
    times map to value * median / p90 .. value * median / p10. The v1 reference's own
    spread is not folded in (it has its own bar). None where the row has no percentiles.
    """
    if row.status != "ok" or not (row.p10_ms and row.p90_ms and row.median_ms):
        return None
    low, high = value * row.median_ms / row.p90_ms, value * row.median_ms / row.p10_ms
    return value - low, high - value


def _bars(ax, group, values, ylabel, title, inverse_time: bool):
    x = range(len(values))
    for i, (row, v) in enumerate(zip(group, values)):
        estimated = row.status == "estimated"
        busy = bool(getattr(row, "busy", None))
        spread = time_spread(row, v) if inverse_time else None
        ax.bar(i, v, color=_ESTIMATED if estimated else _MEASURED,
               hatch="//" if estimated else None,
               edgecolor=_BUSY_EDGE if busy else ("black" if estimated else _MEASURED),
               linewidth=2 if busy else 0.8,
               yerr=[[spread[0]], [spread[1]]] if spread else None, capsize=3 if spread else 0,
               error_kw={"elinewidth": 0.8})
        top = v + (spread[1] if spread else 0)
        ax.annotate(f"{v:.3g}", (i, top), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(x), [bar_label(r) for r in group], fontsize=7)
    ax.margins(y=0.15)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def _legend_note(rows, inverse_time: bool) -> str:
    parts = []
    if inverse_time:
        parts.append("error bars: the row's p10–p90 step times")
    if any(r.status == "estimated" for r in rows):
        parts.append("hatched grey = ESTIMATED (accelerator cycles at its clock, not measured)")
    if any(getattr(r, "busy", None) for r in rows):
        parts.append("red edge / BUSY = measured while the machine was busy (see table.md)")
    return "; ".join(parts)


def _rtl_breakdown(rows, path: Path, device_name: str) -> Path | None:
    """Stacked bars of the accelerator's estimated compute and host-link time per mode."""
    est = [r for r in rows if r.version == "rtl" and r.status == "estimated"]
    if not est:
        return None
    labels = [f"{r.preset}/{r.mode}\nestimated" for r in est]
    compute = [r.estimated_compute_ms for r in est]
    transfer = [r.estimated_transfer_ms for r in est]
    fig, ax = plt.subplots(figsize=(1.4 * len(est) + 4.6, 4.0))
    ax.bar(labels, compute, label="compute (cycles at clock)", color="#4C72B0", hatch="//",
           edgecolor="black", linewidth=0.6)
    ax.bar(labels, transfer, bottom=compute, label="host link", color="#DD8452", hatch="//",
           edgecolor="black", linewidth=0.6)
    for i, (c, t) in enumerate(zip(compute, transfer)):
        ax.annotate(f"{c:.3g} + {t:.3g} ms", (i, c + t), ha="center", va="bottom", fontsize=7)
    ax.margins(y=0.12)
    ax.set_ylabel("ms per step (ESTIMATED)")
    clock = est[0].extra.get("clock_mhz")
    ax.set_title(f"RTL accelerator, ESTIMATED at {clock:g} MHz", fontsize=10)
    # beside the axes: inside, the legend covered the bar
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.text(0.01, 0.01, textwrap.fill(f"Cycles counted in simulation; host link from the PCIe "
                                       f"model. v1 in the table measured on {device_name}.", 70),
             fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _grid(rows, key, ylabel, title_prefix, path: Path, device_name: str,
          inverse_time: bool = False) -> Path | None:
    """One panel per (preset, mode): presets down, modes across.

    ``inverse_time``: the value is proportional to 1 / step time (speedup, achieved rate),
    so it gets p10-p90 error bars.
    """
    ok = [r for r in rows if r.status in ("ok", "estimated") and getattr(r, key) is not None]
    if not ok:
        return None
    presets = list(dict.fromkeys(r.preset for r in ok))
    modes = list(dict.fromkeys(r.mode for r in ok))
    fig, axes = plt.subplots(len(presets), len(modes), squeeze=False,
                             figsize=(3.6 * len(modes) + 0.4, 3.3 * len(presets) + 0.9))
    for i, preset in enumerate(presets):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            group = [r for r in ok if r.preset == preset and r.mode == mode]
            if not group:
                ax.set_visible(False)
                continue
            _bars(ax, group, [getattr(r, key) for r in group], ylabel,
                  f"{title_prefix}: {preset} / {mode}", inverse_time)
    note = _legend_note(ok, inverse_time)
    fig.suptitle(device_name + ("\n" + textwrap.fill(note, 130) if note else ""), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(rows: list, out: Path, device_name: str) -> list[Path]:
    """speedup.png, ceiling_fraction.png, kernel_launches.png (GPU) or aten_ops.png,
    rtl_compute_vs_transfer.png (when the rtl row ran) and peak_memory.png."""
    made = [
        _grid(rows, "speedup_vs_v1", "speedup vs v1 (×)", "speedup", out / "speedup.png",
              device_name, inverse_time=True),
        _grid(rows, "kernel_launches_per_step", "kernel launches / step", "launches",
              out / "kernel_launches.png", device_name),
        _grid(rows, "fraction_of_matmul_ceiling", "fraction of measured matmul rate",
              "achieved / ceiling", out / "ceiling_fraction.png", device_name,
              inverse_time=True),
        _grid(rows, "ops_per_step", "aten operator calls / step", "operator calls",
              out / "aten_ops.png", device_name),
    ]
    made.append(_rtl_breakdown(rows, out / "rtl_compute_vs_transfer.png", device_name))
    mem_rows = [r for r in rows if r.peak_memory_bytes is not None]
    made.append(_grid([_Mib(r) for r in mem_rows], "peak_mib", "peak MiB", "peak memory",
                      out / "peak_memory.png", device_name))
    return [p for p in made if p is not None]


class _Mib:
    """A row view with peak memory in MiB, for plotting."""

    def __init__(self, row):
        self.__dict__.update(row.__dict__)
        self.peak_mib = row.peak_memory_bytes / 2**20
