"""Record every launch of the chosen models, compile each distinct one per target, check it.

One row per (version, preset, dtype, mode, launch, target). Identical launches (same
kernel, signature, constexprs, alignment and options) are compiled once and shared.

The checks, each True / False / None (None: does not apply, or it did not compile):

* ``compiles``;
* ``shared_ok``: ``shared`` <= the target's per-block limit (227 KB, 163 KB, 64 KB LDS);
* ``spill_free``: no local-memory / scratch spills;
* ``tensor_cores``: a kernel with bf16/fp16 ``tt.dot`` has tensor-core instructions;
* ``coresident``: persistent kernels only (a grid barrier inside): the grid the GPU code
  would launch, ``min(tiles, SMs)``, fits ``programs_per_sm * SMs``.
"""
from __future__ import annotations

from .compile_launch import Compiled, compile_spec, spills
from .record import context_dict, record_model
from .targets import Target


def is_persistent(launch) -> bool:
    """A kernel whose programs wait for each other: all must be resident at once."""
    return "persistent" in launch.kernel or bool(
        next(iter(launch.specs.values())).options.get("launch_cooperative_grid"))


def checks(launch, target: Target, c: Compiled) -> dict:
    ok = c.status == "ok"
    row = {"compiles": ok,
           "shared_ok": c.shared <= target.shared_per_block if ok else None,
           "spill_free": not spills(c) if ok else None,
           "tensor_cores": (c.tc_instr > 0) if ok and c.low_precision_dots else None,
           "coresident": None, "grid_on_target": None}
    if is_persistent(launch):
        grid = min(launch.grid[0], target.sms)
        row["grid_on_target"] = grid
        if ok and c.programs_per_sm is not None:
            row["coresident"] = c.programs_per_sm * target.sms >= grid
    return row


def run_gate(versions, presets, dtypes, modes, targets, seq_cap: int = 128,
             log=print) -> list[dict]:
    """All rows for the cross product; ``log`` gets one progress line per model."""
    cache: dict[str, Compiled] = {}
    rows = []
    for preset in presets:
        for version in versions:
            for dtype in dtypes:
                recorded = record_model(version, preset, dtype, modes, targets, seq_cap)
                fresh = 0
                for ctx, launch in recorded:
                    # Each launch was recorded for one target family (its block sizes).
                    for target in (t for t in targets if t.name in launch.specs):
                        spec = launch.specs[target.name]
                        key = spec.key(launch.kernel)
                        if key not in cache:
                            cache[key] = compile_spec(launch.fn, spec, target)
                            fresh += 1
                        c = cache[key]
                        rows.append({**context_dict(ctx), "kernel": launch.short_name,
                                     "target": target.name, "grid": list(launch.grid),
                                     "num_warps": launch.num_warps,
                                     "num_stages": launch.num_stages,
                                     "constexprs": {k: str(v) for k, v in
                                                    launch.constexprs.items()},
                                     **c.to_dict(), **checks(launch, target, c)})
                log(f"compile_gate: {version} {preset} {dtype}: {len(recorded)} launches, "
                    f"{fresh} new compiles ({len(cache)} distinct so far)")
    return rows


def failures(rows: list[dict]) -> list[dict]:
    """Rows where any applicable check is False."""
    names = ("compiles", "shared_ok", "spill_free", "tensor_cores", "coresident")
    return [r for r in rows if any(r[n] is False for n in names)]

