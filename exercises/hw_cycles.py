"""Where one decoder block's accelerator cycles go, and what one changed parameter does to them.

    python -m exercises.hw_cycles --preset chip16 --target rtl --out results/ex/hw-cycles
    python -m exercises.hw_cycles --preset tiny --set n=32 --out results/ex/hw-n32

One decoder block of the preset (quantized as ``benchmarks.hw`` does, weights resident in
weight SRAM) runs one prefill step over the preset's whole sequence, and ``cycles.json``
keeps the step's counters (cycles; array, vector and DMA busy; stall) and the one-time weight
load's. The block's output is checked bit-exact against the plain golden model on the same
configuration.

``--target model`` (default): the golden model, with cycles counted by the cycle model
(``hw_offload/cycle_model.py``) over the program it executed. The fuzzer holds that model
equal to the RTL's counters, cycle for cycle, on the default build; it needs no Verilator
build, so any ``AccelConfig`` runs in a second. ``--target rtl``: the Verilator test build
(the default configuration, chip16, only).

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

from hw_offload.configs import NAMED, AccelConfig, get_config
from hw_offload.cycle_model import run_cycles
from hw_offload.device_counters import Counters
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import Insn

MODEL_SOURCE = "cycle model (hw_offload/cycle_model.py) over the golden model's executed program"
RTL_SOURCE = "Verilator test build's counters (cycle-accurate RTL)"


class CycleCountingGolden(GoldenAccelerator):
    """The golden model whose runs report the cycle model's counters."""

    def _run_program(self, max_cycles: int) -> Counters:
        c = super()._run_program(max_cycles)
        # straight-line programs (the ISA has no branches): the executed instructions are the
        # ``instructions`` words from start_pc, HALT included
        executed = [Insn.decode(w) for w in self.imem[self.start_pc:self.start_pc + c.instructions]]
        for name, value in run_cycles(executed, self.config).to_dict().items():
            setattr(c, name, value)
        return c


def parse_changes(items: list[str]) -> dict[str, int | float]:
    """``["n=32", "lanes=32"]`` -> ``{"n": 32, "lanes": 32}``, each an AccelConfig field."""
    known = {f.name: f.type for f in dataclasses.fields(AccelConfig) if f.name != "name"}
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


def run_block(preset: str, config: AccelConfig, target: str) -> dict:
    """One prefill step of ``preset``'s first block on ``config``: counters and weight load."""
    from benchmarks.hw.bench_block import build_block
    from hw_offload.calibrate import quantize_block
    from hw_offload.quant import quantize
    from hw_offload.testing import run_one_block

    cfg, layer, cos, sin, calib, x = build_block(preset)
    if cfg.hidden_size % config.n:
        raise SystemExit(f"error: preset {preset}'s hidden size {cfg.hidden_size} is not a "
                         f"multiple of the array size n={config.n}; take a larger preset "
                         "(tiny) or a smaller n")
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])
    if target == "rtl":
        from hw_offload.driver import Accelerator
        device = Accelerator("test")
        if device.config != config.hw():
            raise SystemExit(f"error: --target rtl runs the default Verilator build "
                             f"({device.config}); configuration {config.name!r} differs: use "
                             "--target model")
    else:
        device = CycleCountingGolden(config.hw())
    y, counters, session = run_one_block(device, qb, x_q)
    y_ref, _, _ = run_one_block(GoldenAccelerator(config.hw()), qb, x_q)
    if (y != y_ref).any():
        raise RuntimeError(f"{target} output differs from the golden model on {config.name}")
    return {"config": config.to_dict(), "counters": counters.to_dict(),
            "weight_load_counters": session.setup_records[0].counters.to_dict(),
            "block_time_us_at_clock": counters.cycles / config.clock_mhz}


def measure(preset: str, config_name: str, changes: dict, target: str) -> dict:
    from version1_baseline import get_preset

    base = get_config(config_name)
    configs = {"baseline": base}
    if changes:     # built first: AccelConfig refuses a bad value before anything runs
        configs["changed"] = dataclasses.replace(base, name=f"{base.name}+" + ",".join(
            f"{k}={v}" for k, v in changes.items()), **changes)
    runs = {side: run_block(preset, config, target) for side, config in configs.items()}
    return {"preset": preset, "seq_len": get_preset(preset).max_seq_len, "target": target,
            "counted_by": RTL_SOURCE if target == "rtl" else MODEL_SOURCE,
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
        print(f"{side:9} {r['config']['name']:24} {json.dumps(r['counters'])}")
    print(f"wrote {out / 'cycles.json'} ({res['counted_by']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
