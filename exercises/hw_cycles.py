"""Where one decoder block's accelerator cycles go, and what one changed parameter does to them.

    python -m exercises.hw_cycles --preset chip16 --target rtl --out results/ex/hw-cycles
    python -m exercises.hw_cycles --preset tiny --set n=32 --out results/ex/hw-n32

One decoder block of the preset (quantized as ``benchmarks.hw`` does, weights resident in
weight SRAM) runs one prefill step over the preset's whole sequence, and ``cycles.json``
keeps the step's counters (cycles; array, vector and DMA busy; stall; summed over the device
runs when the SRAM plan splits the step) and the one-time weight load's.

``--target model`` (default): the golden model, with cycles counted by the cycle model
(``hw_offload/cycle_model.py``) over the program it executed (``make_device("cycle_model")``).
The fuzzer holds that model equal to the RTL's counters, cycle for cycle; it needs no
Verilator build, so any ``AccelConfig`` runs in a second. ``--target rtl``: the
configuration's Verilator test build (cached per configuration: other sizes than chip16's
are built on first use, minutes; the memory timing is the harness's, so it needs no build),
its output checked bit-exact against the golden model.

``--set FIELD=VALUE`` (repeatable) changes fields of the ``--config`` configuration
(``hw_offload.configs.AccelConfig``: n, lanes, a_rows, w_rows, acc_rows, ...). The block then
runs twice, on the configuration as named (``runs.baseline``) and as changed
(``runs.changed``), so one file holds both sides of the comparison.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from hw_offload.configs import NAMED, AccelConfig, get_config
from hw_offload.golden_cycles import COUNTER_SOURCE
from hw_offload.model_session import ModelSession, make_device
from hw_offload.testing import POISON

RTL_SOURCE = "Verilator test build of the configuration (cycle-accurate RTL counters)"


def parse_changes(items: list[str]) -> dict[str, int | float]:
    """``["n=32", "lanes=32"]`` -> ``{"n": 32, "lanes": 32}``, each an AccelConfig field."""
    known = [f.name for f in dataclasses.fields(AccelConfig) if f.name != "name"]
    changes: dict[str, int | float] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or field not in known:
            raise SystemExit(f"error: --set {item!r}: expected FIELD=VALUE with FIELD one of "
                             f"{', '.join(known)}")
        try:
            changes[field] = float(value) if field == "clock_mhz" else int(value, 0)
        except ValueError:
            raise SystemExit(f"error: --set {item!r}: {value!r} is not a number") from None
    return changes


def _prefill(device, qb, x_q: np.ndarray) -> tuple[np.ndarray, dict, dict, int]:
    """Prefill of x_q (int8 (S, hidden)) through a model session, weights resident, output
    poisoned first. The SRAM plan may split it into several device runs (a small
    accumulator holds fewer tokens): -> (y_q, their summed counters, the weight load's
    counters (None for the golden model's, which has no clock), how many runs)."""
    session = ModelSession([qb], x_q.shape[0], 0, device=device, weights="resident",
                           progress=False)
    device.write_mem(session.plan.y_dram, np.full(x_q.size, POISON, dtype=np.uint8))
    y_q = session.run_block(0, x_q[None], 0, keep_kv=False)[0]
    runs = [r.counters.to_dict() for r in session.records if r.kind == "step"]
    load = session.setup_records[0].counters.to_dict()
    session.close()
    total = {k: None if v is None else sum(r[k] for r in runs) for k, v in runs[0].items()}
    return y_q, total, load, len(runs)


def run_block(qb, x_q: np.ndarray, config: AccelConfig, target: str) -> dict:
    """One prefill step of a quantized block on ``config``: counters and weight load. On the
    RTL the output is also checked bit-exact against the golden model (the cycle-model target
    *is* the golden model)."""
    device = make_device("verilator" if target == "rtl" else "cycle_model", config,
                         variant="test")
    y, counters, load, runs = _prefill(device, qb, x_q)
    if target == "rtl" and (y != _prefill(make_device("golden", config), qb, x_q)[0]).any():
        raise RuntimeError(f"the RTL's output differs from the golden model on {config.name}")
    return {"config": config.to_dict(), "counters": counters, "device_runs": runs,
            "weight_load_counters": load,
            "block_time_us_at_clock": counters["cycles"] / config.clock_mhz}


def measure(preset: str, config_name: str, changes: dict, target: str) -> dict:
    """``preset``'s first decoder block (quantized as ``benchmarks.hw`` does) on the named
    configuration, and on it as changed when ``changes`` are given."""
    from benchmarks.hw.bench_block import build_block
    from hw_offload.calibrate import quantize_block
    from hw_offload.quant import quantize

    base = get_config(config_name)
    configs = {"baseline": base}
    if changes:     # built first: AccelConfig refuses a bad value before anything runs
        configs["changed"] = dataclasses.replace(base, name=f"{base.name}+" + ",".join(
            f"{k}={v}" for k, v in changes.items()), **changes)
    cfg, layer, cos, sin, calib, x = build_block(preset)
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    runs = {side: run_block(qb, x_q, config, target) for side, config in configs.items()}
    return {"preset": preset, "seq_len": cfg.max_seq_len, "target": target,
            "counted_by": RTL_SOURCE if target == "rtl" else COUNTER_SOURCE,
            "changes": changes, "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exercises.hw_cycles", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="chip16")
    p.add_argument("--config", default="chip16", choices=sorted(NAMED),
                   help="the accelerator configuration (hw_offload/configs.py)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one field of --config, e.g. n=32; repeatable")
    p.add_argument("--target", default="model", choices=["model", "rtl"])
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    changes = parse_changes(args.set)
    try:
        res = measure(args.preset, args.config, changes, args.target)
    except ValueError as exc:       # an AccelConfig refusing a value, a block that cannot fit
        raise SystemExit(f"error: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cycles.json").write_text(json.dumps(res, indent=2) + "\n")
    for side, r in res["runs"].items():
        print(f"{side:9} {r['config']['name']:24} {r['device_runs']} run(s) "
              f"{json.dumps(r['counters'])}")
    print(f"wrote {out / 'cycles.json'} ({res['counted_by']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
