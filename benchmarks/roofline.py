"""Roofline placement of each version: achieved FLOP/s against arithmetic intensity.

The FLOPs are counted (v1 eager, FlopCounterMode) and the times measured. The bytes are a
MODEL, not a measurement: the minimum traffic a step cannot avoid (every weight read once,
the KV cache read or written once, token ids and logits once; for training, also gradients
and AdamW's two moment buffers read and written once). It is the x axis of the classic
roofline, where a real kernel's traffic can only be larger. The plot says so on its axis.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def write_roofline(rows: list, machine: dict, configs: dict[str, dict], path: Path) -> Path | None:
    """One point per measured (version, preset, mode) under the measured ceilings."""
    ceilings = machine.get("ceilings")
    points = [r for r in rows if r.status == "ok" and r.achieved_flops_per_s]
    if not ceilings or not points:
        return None
    peak, bandwidth = ceilings["matmul_flops_per_s"], ceilings["copy_bytes_per_s"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = []
    for r in points:
        intensity = r.workload_flops / minimum_bytes(configs[r.preset], r.mode, r.batch_size,
                                                     r.seq_len)
        xs.append(intensity)
        ax.scatter(intensity, r.achieved_flops_per_s, s=25)
        ax.annotate(f"{r.version} {r.preset}/{r.mode}", (intensity, r.achieved_flops_per_s),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    lo, hi = min(xs) / 4, max(xs) * 4
    ridge = peak / bandwidth
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak, bandwidth * x) for x in grid], color="black", lw=1,
            label=f"measured ceilings: copy {bandwidth / 1e9:.0f} GB/s, "
                  f"{ceilings['matmul_dtype']} matmul {peak / 1e9:.0f} GFLOP/s")
    ax.axvline(ridge, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOP per byte of MINIMUM traffic (a model of the bytes, not a measurement)")
    ax.set_ylabel("achieved FLOP/s (counted FLOPs / measured median)")
    ax.set_title(f"Roofline: {machine['device_name']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
