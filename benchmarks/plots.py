"""Matplotlib PNGs of harness rows: speedup per mode, kernel launches, peak memory.

Only rows with status "ok" are drawn; a version that did not run has no bar.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only; no display on these machines
import matplotlib.pyplot as plt  # noqa: E402


def _bars(ax, labels, values, ylabel, title):
    ax.bar(range(len(values)), values, color="#4C72B0")
    ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=7)


def _rtl_breakdown(rows, path: Path, device_name: str) -> Path | None:
    """Stacked bars of the accelerator's estimated compute and host-link time per mode."""
    est = [r for r in rows if r.version == "rtl" and r.status == "estimated"]
    if not est:
        return None
    labels = [f"{r.preset}/{r.mode}" for r in est]
    compute = [r.estimated_compute_ms for r in est]
    transfer = [r.estimated_transfer_ms for r in est]
    fig, ax = plt.subplots(figsize=(1.6 * len(est) + 2, 3.6))
    ax.bar(labels, compute, label="compute (cycles at clock)", color="#4C72B0")
    ax.bar(labels, transfer, bottom=compute, label="host link", color="#DD8452")
    ax.set_ylabel("ms per step (ESTIMATED)")
    clock = est[0].extra.get("clock_mhz")
    ax.set_title(f"RTL accelerator, estimated at {clock:g} MHz", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle(f"v1 measured on {device_name}; accelerator cycles counted in simulation",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _grid(rows, key, ylabel, title_prefix, path: Path, device_name: str) -> Path | None:
    # Estimated rows (the accelerator) are drawn too, labelled "(est.)" on their bar.
    ok = [r for r in rows if r.status in ("ok", "estimated") and getattr(r, key) is not None]
    if not ok:
        return None
    groups: dict[tuple[str, str], list] = {}
    for r in ok:
        groups.setdefault((r.preset, r.mode), []).append(r)
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.6), squeeze=False)
    for ax, ((preset, mode), group) in zip(axes[0], groups.items()):
        _bars(ax, [r.version + (" (est.)" if r.status == "estimated" else "") for r in group],
              [getattr(r, key) for r in group], ylabel,
              f"{title_prefix}: {preset} / {mode}")
    fig.suptitle(device_name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(rows: list, out: Path, device_name: str) -> list[Path]:
    """speedup.png, ceiling_fraction.png, kernel_launches.png (GPU) or aten_ops.png,
    rtl_compute_vs_transfer.png (when the rtl row ran) and peak_memory.png."""
    made = [
        _grid(rows, "speedup_vs_v1", "speedup vs v1 (×)", "speedup", out / "speedup.png",
              device_name),
        _grid(rows, "kernel_launches_per_step", "kernel launches / step", "launches",
              out / "kernel_launches.png", device_name),
        _grid(rows, "fraction_of_matmul_ceiling", "fraction of measured matmul rate",
              "achieved / ceiling", out / "ceiling_fraction.png", device_name),
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
