"""``verilator --lint-only -Wall`` of the whole RTL at each named configuration's parameters.

    python -m hw_offload.lint [--config NAME ...]

The builds already run with ``-Wall`` (a warning fails them), but only at the parameters a
build is asked for; this checks every named configuration in a few seconds without compiling.
A parameter of ``AccelConfig.verilator_params()`` that ``accel_top`` does not declare (yet) is
left out and named in the result, so the check never passes on an override Verilator ignored.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass

from .build import RTL_FILES, find_verilator, rtl_dir
from .configs import NAMED, AccelConfig, get_config
from .synth import module_parameters

TOP = "accel_top"


@dataclass(frozen=True)
class LintResult:
    config: str
    ok: bool
    output: str                 # Verilator's warnings and errors (empty when clean)
    skipped_params: tuple       # verilator_params() that accel_top does not declare


def lint(cfg: AccelConfig, timeout_s: float = 300.0) -> LintResult:
    exe, env = find_verilator()
    files = [rtl_dir() / f for f in RTL_FILES]
    declared = module_parameters(TOP, files)
    params = cfg.verilator_params()
    cmd = [exe, "--lint-only", "-Wall", "--top-module", TOP]
    cmd += [f"-G{k}={v}" for k, v in sorted(params.items()) if k in declared]
    cmd += [str(f) for f in files]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    # Verilator prints a "V e r i l a t i o n   R e p o r t" summary even when clean.
    out = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                    if not line.startswith("- V") and line.strip())
    return LintResult(config=cfg.name, ok=proc.returncode == 0, output=out,
                      skipped_params=tuple(sorted(set(params) - declared)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw_offload.lint",
                                description="verilator --lint-only -Wall at each named config")
    p.add_argument("--config", action="append", default=None, metavar="NAME",
                   help=f"named configuration (repeatable; default: all of {sorted(NAMED)})")
    a = p.parse_args(argv)
    try:
        cfgs = [get_config(n) for n in (a.config or sorted(NAMED))]
    except KeyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = 0
    for cfg in cfgs:
        r = lint(cfg)
        skipped = f" (accel_top has no {', '.join(r.skipped_params)} parameter: not set)" \
            if r.skipped_params else ""
        print(f"{cfg.name}: {'clean' if r.ok else 'FAILED'}{skipped}")
        if not r.ok:
            bad += 1
            print("  " + r.output.replace("\n", "\n  "))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
