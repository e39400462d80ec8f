"""Generic-cell synthesis of the accelerator's units with Yosys: cells, flip-flops, logic depth.

    python -m hw_offload.synth [--config NAME ...] [--module UNIT ...] [--jobs 2]
                               [--keep-going] [--out DIR [--update-readme]]

For each named configuration (``configs.NAMED``) and each unit in ``TARGETS`` this runs Yosys's
generic flow (``synth -top <unit>`` with the configuration's parameters), flattens the mapped
netlist and reports:

* ``cells``: generic gate cells (``$_AND_``, ``$_XOR_``, ``$_MUX_``, ... and flip-flops);
* ``flip_flops``: the flip-flop cells among them (one per stored bit);
* ``depth``: ``ltp -noff``, the longest combinational path between flip-flops / ports in
  generic gates. It is the number the clock each configuration is priced at is judged by
  (README, "Synthesis").

This is **generic-cell synthesis: no cell library, no place and route**. Every gate counts as
one level and one cell whatever its real size, and wires cost nothing; the numbers compare
designs with each other, they are not a timing sign-off.

Yosys must be on PATH (Debian: ``apt-get install yosys``; ``scripts/setup_env.sh`` installs it
where it can). Yosys 0.23 (Debian 12) is the oldest version the RTL is kept readable by.
A Yosys run that fails, or whose output cannot be parsed, raises ``SynthError``: no row is ever
made up (``--keep-going`` lists such a unit as not synthesized, with Yosys's error, and still
exits 1). ``HW_RTL_DIR`` (see ``build.rtl_dir``) synthesizes another copy of the RTL.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .build import RTL_FILES, rtl_dir
from .configs import NAMED, get_config

# The units synthesized on their own: the array (the PE grid with its skew and de-skew
# registers) and the vector unit. Their memories are outside them (ports), so neither count
# includes SRAM.
TARGETS = ("systolic_array", "vector_unit")
# Memory macros inside a unit (the vector unit's table SRAM): read as black boxes (Yosys
# `read_verilog -lib`), so the unit's logic is what is mapped. Their instances are reported
# apart (``SynthResult.macros``), not counted as cells, and removed before `ltp`: a black box
# would otherwise chain its address logic to its read-data logic, while a synchronous SRAM's
# read data comes from its own output register.
MACROS = ("table_sram",)
OTHER_UNITS = ("gemm_unit",)   # the array with its tile sequencer; on request (--module)
LABEL = "generic-cell synthesis: no cell library, no place and route"

# The clock estimate's assumptions (README, "Synthesis"): one generic gate level costs GATE_PS
# (a 2-input gate or mux with its wire in a 28-40 nm standard-cell library, on the slow side),
# and a register stage REG_PS (clock-to-Q + setup + skew and jitter). An estimate, not a timing
# analysis: the real numbers need a cell library and place and route.
GATE_PS = 50.0
REG_PS = 200.0


def estimated_fmax_mhz(depth: int, gate_ps: float = GATE_PS, reg_ps: float = REG_PS) -> float:
    """The clock a path of ``depth`` generic gate levels allows under the stated assumptions."""
    return 1e6 / (depth * gate_ps + reg_ps)


class YosysNotFoundError(RuntimeError):
    """No ``yosys`` executable on PATH."""


class SynthError(RuntimeError):
    """Yosys failed, or its output did not say what we need; the message carries its log."""


@dataclass(frozen=True)
class SynthResult:
    """One unit of one configuration, as Yosys's generic flow maps it."""

    config: str
    module: str
    params: dict[str, int]
    cells: int              # all generic cells, flip-flops included
    flip_flops: int         # flip-flop cells (one bit each)
    depth: int              # longest combinational path, in generic gate levels
    seconds: float          # Yosys wall time on this machine
    cells_by_type: dict[str, int]
    cached: bool = False    # taken from an identical earlier run (same sources, params, Yosys)
    macros: dict[str, int] = field(default_factory=dict)   # black-box memory instances (MACROS)


def find_yosys() -> str:
    exe = shutil.which("yosys")
    if not exe:
        raise YosysNotFoundError("no `yosys` on PATH; install it (Debian/Ubuntu: "
                                 "`apt-get install -y yosys`, or scripts/setup_env.sh as root)")
    return exe


def yosys_version(exe: str | None = None) -> str:
    out = subprocess.run([exe or find_yosys(), "-V"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))


def _declarations(files: list[Path]) -> dict[str, Path]:
    """Module and package name -> the file that declares it."""
    found = {}
    for f in files:
        for name in re.findall(r"^\s*(?:module|package)\s+(\w+)", _strip_comments(f.read_text()),
                               flags=re.M):
            found[name] = f
    return found


def sources_of(top: str, src_dir: Path | None = None) -> list[Path]:
    """The RTL files ``top`` needs: its own file and, transitively, every file declaring a
    module or package its text names; packages first, then in ``build.RTL_FILES`` order.

    Only these are read, so a unit can be synthesized while another file is not yet in the
    subset Yosys reads.
    """
    d = Path(src_dir) if src_dir is not None else rtl_dir()
    files = [d / f for f in RTL_FILES]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SynthError(f"RTL files missing: {missing}")
    decl = _declarations(files)
    if top not in decl:
        raise SynthError(f"no module {top!r} in {d} (declared there: {sorted(decl)})")
    need, todo = set(), [decl[top]]
    while todo:
        f = todo.pop()
        if f in need:
            continue
        need.add(f)
        words = set(re.findall(r"\b\w+\b", _strip_comments(f.read_text())))
        todo += [g for name, g in decl.items() if name in words and g not in need]
    packages = {decl[n] for n in decl
                if re.search(rf"^\s*package\s+{n}\b", decl[n].read_text(), flags=re.M)}
    return sorted(need, key=lambda f: (f not in packages, files.index(f)))


def module_parameters(top: str, files: list[Path]) -> set[str]:
    """The parameter names ``top`` declares (so a configuration sets only those)."""
    for f in files:
        text = _strip_comments(f.read_text())
        m = re.search(rf"^\s*module\s+{top}\b(.*?)\bendmodule\b", text, flags=re.M | re.S)
        if m:
            return set(re.findall(r"\bparameter\s+(?:int\s+|integer\s+)?(\w+)\s*=", m.group(1)))
    raise SynthError(f"module {top!r} not found in {[str(f) for f in files]}")


def parameters_for(top: str, params: dict[str, int], src_dir: Path | None = None) -> dict[str, int]:
    """The entries of ``params`` (e.g. ``AccelConfig.verilator_params()``) that ``top`` declares."""
    declared = module_parameters(top, sources_of(top, src_dir))
    return {k: int(v) for k, v in params.items() if k in declared}


def yosys_script(top: str, files: list[str], params: dict[str, int], stat_json: str,
                 macro_files: tuple[str, ...] = ()) -> str:
    """Read, set parameters, map to generic cells, flatten, check, count, longest path.

    The units keep their hierarchy while mapping (a PE is mapped once, not N*N times) and are
    flattened afterwards, because ``ltp`` only follows paths inside one module. File names are
    relative to Yosys's working directory (Yosys scripts have no quoting for paths with spaces).
    ``macro_files`` (among ``files``) declare memory macros: read as black boxes, counted by
    `stat`, and deleted before `ltp` (``MACROS``).
    """
    logic = [f for f in files if f not in macro_files]
    lines = ["read_verilog -sv " + " ".join(logic)]
    lines += ["read_verilog -sv -lib " + f for f in files if f in macro_files]
    lines += [f"chparam -set {k} {v} {top}" for k, v in sorted(params.items())]
    # Yosys may name the elaborated top `$paramod\\<top>\\<params>`: give it back its name.
    lines += [f"synth -top {top}", "flatten", f"rename -top {top}", "check -assert",
              f"tee -q -o {stat_json} stat -json"]
    lines += [f"delete t:{m}" for m in MACROS]
    lines += ["ltp -noff"]
    return "\n".join(lines) + "\n"


_FF = re.compile(r"^\$_(?:DFF|DFFE|SDFF|SDFFE|SDFFCE|DFFSR|DFFSRE|ALDFF|ALDFFE|FF)_")
_LATCH = re.compile(r"^\$_(?:DLATCH|DLATCHSR|SR)_")


def parse_stat(stat_json: str, top: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """(cell count, cells by type, black-box memory macros by type) of ``top`` from
    ``stat -json``; the macros (``MACROS``) are not counted as cells."""
    data = json.loads(stat_json)
    mods = data.get("modules", {})
    mod = mods.get("\\" + top) or mods.get(top)
    if mod is None:
        raise SynthError(f"stat -json has no module {top!r} (modules: {sorted(mods)})")
    by_type = {str(k): int(v) for k, v in mod["num_cells_by_type"].items()}
    cells = int(mod["num_cells"])
    if cells != sum(by_type.values()) or cells <= 0:
        raise SynthError(f"stat -json of {top}: {cells} cells, by type {by_type}")
    macros = {t.lstrip("\\"): by_type.pop(t) for t in list(by_type) if t.lstrip("\\") in MACROS}
    cells -= sum(macros.values())
    unmapped = sorted(t for t in by_type if not t.startswith("$_"))
    if unmapped:   # a submodule instance or a coarse cell left: the netlist is not generic gates
        raise SynthError(f"{top}: cells not mapped to generic gates: {unmapped}")
    return cells, by_type, macros


def parse_ltp(log: str, top: str) -> int:
    """The length of ``ltp``'s longest path in ``top`` (gate levels)."""
    m = re.findall(rf"^Longest topological path in \\?{re.escape(top)} \(length=(\d+)\):",
                   log, flags=re.M)
    if len(m) != 1:
        raise SynthError(f"expected one `Longest topological path in {top}` line in the Yosys "
                         f"log, found {len(m)}")
    return int(m[0])


# Results of earlier runs, keyed by everything that decides them (git-ignored, like the
# Verilator builds): a table re-run after another unit changed re-synthesizes only that unit.
CACHE_DIR = Path(__file__).resolve().parent / "sim" / "build" / "synth-cache"
CACHE_VERSION = 2   # bump when the flow or the parsing changes (2: memory macros as black boxes)


def cache_key(top: str, files: list[Path], used: dict[str, int], version: str) -> str:
    """sha256 over the flow, Yosys's version, the unit, its parameters and its sources."""
    h = hashlib.sha256(f"{CACHE_VERSION}|{version}|{top}|{sorted(used.items())}".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def synthesize(top: str, params: dict[str, int], config: str = "", src_dir: Path | None = None,
               timeout_s: float | None = None, cache: bool = False) -> SynthResult:
    """Synthesize ``top`` with ``params`` (names it does not declare are left out).

    ``cache``: reuse the result of an identical earlier run from ``CACHE_DIR`` (same sources,
    parameters, Yosys and flow) and store new ones there. Failures are never cached.
    """
    exe = find_yosys()
    files = sources_of(top, src_dir)
    used = parameters_for(top, params, src_dir)
    if cache:
        entry = CACHE_DIR / f"{top}-{cache_key(top, files, used, yosys_version(exe))}.json"
        if entry.exists():
            return replace(SynthResult(**json.loads(entry.read_text())), config=config,
                           cached=True)
        r = synthesize(top, used, config, src_dir, timeout_s, cache=False)
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(json.dumps(asdict(r)))
        return r
    with tempfile.TemporaryDirectory(prefix=f"synth-{top}-") as tmp_name:
        tmp = Path(tmp_name)
        for f in files:                   # a private copy: names Yosys can read unquoted
            shutil.copy(f, tmp / f.name)
        macro_files = tuple(f.name for f in files
                            if any(_declarations([f]).get(m) == f for m in MACROS))
        (tmp / "synth.ys").write_text(yosys_script(top, [f.name for f in files], used,
                                                   "stat.json", macro_files))
        t0 = time.time()
        try:
            proc = subprocess.run([exe, "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise SynthError(f"yosys on {top} {used} ran past {timeout_s} s") from None
        seconds = time.time() - t0
        log_path, stat_json = tmp / "yosys.log", tmp / "stat.json"
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        if proc.returncode != 0:
            tail = "\n".join((log + proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise SynthError(f"yosys failed on {top} {used} (exit {proc.returncode}):\n{tail}")
        if not stat_json.exists():
            raise SynthError(f"yosys on {top} wrote no statistics; log tail:\n{log[-2000:]}")
        cells, by_type, macros = parse_stat(stat_json.read_text(), top)
    depth = parse_ltp(log, top)
    ffs = sum(n for t, n in by_type.items() if _FF.match(t))
    latches = sum(n for t, n in by_type.items() if _LATCH.match(t))
    if latches:
        raise SynthError(f"{top} {used}: Yosys inferred {latches} latch cells. The RTL has no "
                         f"latches by design, so Yosys read some always_comb differently from "
                         f"Verilator (typically a local assigned on only some paths)")
    if ffs <= 0 or depth <= 0:
        raise SynthError(f"{top} {used}: implausible result: {ffs} flip-flops, depth {depth}")
    return SynthResult(config=config, module=top, params=used, cells=cells, flip_flops=ffs,
                       depth=depth, seconds=round(seconds, 1),
                       cells_by_type=by_type, macros=macros)


@dataclass(frozen=True)
class SynthFailure:
    """A unit Yosys could not synthesize (``--keep-going``): reported, never given numbers."""

    config: str
    module: str
    params: dict[str, int]
    error: str              # Yosys's first ERROR line, or SynthError's first line


def _first_error(e: SynthError) -> str:
    msg = str(e)
    m = re.search(r"^.*ERROR: .*$", msg, flags=re.M)
    return (m.group(0) if m else msg.splitlines()[0]).strip()


def markdown(results: list[SynthResult], command: str, version: str,
             failures: list[SynthFailure] = ()) -> str:
    """The report: one row per configuration and unit, and the depth ratio per config."""
    lines = [f"# Synthesis ({LABEL})", "",
             f"`{command}` with {version} on {platform.node() or 'this machine'} "
             f"({os.cpu_count()} CPUs), "
             f"{time.strftime('%Y-%m-%d')}. Flow: `synth -top <unit>` (generic gates), `flatten`, "
             "`stat`, `ltp -noff`. Every gate is one cell and one level whatever its size; "
             "wires are free. The numbers compare designs; they are no timing sign-off.", "",
             "| config | unit | parameters | cells | flip-flops | longest path (gate levels) |",
             "|---|---|---|---:|---:|---:|"]
    order = list(dict.fromkeys([r.config for r in results] + [f.config for f in failures]))
    units = TARGETS + OTHER_UNITS
    for r in sorted([*results, *failures], key=lambda r: (
            order.index(r.config), units.index(r.module) if r.module in units else len(units))):
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        if isinstance(r, SynthFailure):
            lines.append(f"| {r.config} | `{r.module}` | {params} | not synthesized: Yosys "
                         f"failed (`{r.error.replace('|', '/')}`) | | |")
        else:
            lines.append(f"| {r.config} | `{r.module}` | {params} | {r.cells:,} | "
                         f"{r.flip_flops:,} | {r.depth} |")
    if failures:
        lines += ["", f"{len(failures)} unit(s) not synthesized (the command exited 1); the "
                  "reason shown is Yosys's first error."]
    boxed = sorted({(r.module, m, k) for r in results for m, k in r.macros.items()})
    if boxed:
        lines += ["", "Memory macros, kept as black boxes (not synthesized; not in the cells, "
                  "flip-flops or depth above; their read data comes from their own output "
                  "register): " + "; ".join(f"`{u}` holds {k} x `{m}`" for u, m, k in boxed)
                  + ". The vector unit's `table_sram` (one entry per column block: RMS gain or "
                  "column-scale tables, 4 weight-SRAM rows) would be a small SRAM macro."]
    by_cfg: dict[str, dict[str, SynthResult]] = {}
    for r in results:
        by_cfg.setdefault(r.config, {})[r.module] = r
    ratios = [(c, u["vector_unit"].depth / u["systolic_array"].depth)
              for c, u in by_cfg.items() if {"vector_unit", "systolic_array"} <= set(u)]
    if ratios:
        lines += ["", "Vector unit depth / array depth (issue 17's goal: at most 2): " +
                  "; ".join(f"{c} {x:.2f}x" for c, x in ratios) + "."]
    reused = {(r.module, tuple(sorted(r.params.items()))) for r in results if r.cached}
    if reused:
        lines += ["", f"{len(reused)} of the unit / parameter sets above were taken from the "
                  "cache of identical earlier runs of this flow (same sources, parameters and "
                  "Yosys; `--no-cache` re-runs them)."]
    lines += ["", f"**Clock check (an estimate)**: a path of d generic gate levels is assumed to "
              f"take d x {GATE_PS:g} ps + {REG_PS:g} ps of register overhead (README, "
              f"\"Synthesis\"). The memories are outside these units: an SRAM read in front of "
              f"a path adds its access time.", "",
              "| config | deepest unit synthesized | depth | estimated f_max (MHz) "
              "| priced at (MHz) | supported by the estimate |",
              "|---|---|---:|---:|---:|---|"]
    failed: dict[str, list[str]] = {}
    for f in failures:
        failed.setdefault(f.config, []).append(f.module)
    for c in dict.fromkeys([r.config for r in results] + [f.config for f in failures]):
        units = by_cfg.get(c, {})
        clock = NAMED[c].clock_mhz if c in NAMED else float("nan")
        missing = sorted(set(TARGETS) - set(units))
        if not units:
            lines.append(f"| {c} | none | | | {clock:g} | **unknown**: nothing synthesized |")
            continue
        deepest = max(units.values(), key=lambda r: r.depth)
        fmax = estimated_fmax_mhz(deepest.depth)
        verdict = "yes" if clock <= fmax else "**no**"
        if c in failed:
            verdict = (f"**unknown**: {', '.join(sorted(failed[c]))} not synthesized" +
                       ("" if clock <= fmax else "; already **no** by the units synthesized"))
        elif missing:
            verdict += f" for {', '.join(sorted(units))} ({', '.join(missing)} not run)"
        lines.append(f"| {c} | `{deepest.module}` | {deepest.depth} | {fmax:.0f} | {clock:g} "
                     f"| {verdict} |")
    return "\n".join(lines) + "\n"


def run_units(cfg_names: list[str], targets: tuple[str, ...], jobs: int = 1,
              timeout_s: float | None = None, cache: bool = True
              ) -> list[SynthResult | SynthFailure]:
    """Every (configuration, unit), in that order; a unit whose parameters repeat is run once
    (the SRAM sizes that tell some configurations apart are not the units' parameters), and
    up to ``jobs`` Yosys runs at a time. A failure is returned (and printed in full), not
    raised, so the caller decides whether to go on."""
    planned, unique = [], {}
    for name in cfg_names:
        for t in targets:
            try:
                used = parameters_for(t, get_config(name).verilator_params())
            except SynthError as e:
                print(f"error: {name} {t}: {e}", file=sys.stderr)
                planned.append((name, t, SynthFailure(name, t, {}, _first_error(e))))
                continue
            key = (t, tuple(sorted(used.items())))
            unique.setdefault(key, (t, used, name))
            planned.append((name, t, key))

    def one(t: str, used: dict[str, int], name: str) -> SynthResult | SynthFailure:
        try:
            r = synthesize(t, used, config=name, timeout_s=timeout_s, cache=cache)
        except SynthError as e:
            print(f"error: {name} {t}: {e}", file=sys.stderr)
            return SynthFailure(name, t, used, _first_error(e))
        print(f"{name:8s} {t:15s} cells {r.cells:9,d}  flip-flops {r.flip_flops:8,d}  "
              f"depth {r.depth:4d}  ({r.seconds:.0f} s)", flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # threads wait on yosys
        futures = {k: pool.submit(one, *v) for k, v in unique.items()}
        done = {k: f.result() for k, f in futures.items()}
    return [replace(done[p], config=name) if isinstance(p, tuple) else p
            for name, _, p in planned]


README = Path(__file__).resolve().parent / "README.md"
README_BEGIN = ("<!-- synth:begin (generated by `python -m hw_offload.synth --out "
                "benchmarks/results/cpu-2core/hw --update-readme`; do not edit) -->")
README_END = "<!-- synth:end -->"


def sync_readme(report_md: str, readme: Path = README) -> bool:
    """Put the report (without its title) between the README's markers; True if it changed."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SynthError(f"{readme} lacks the markers {README_BEGIN!r} / {README_END!r}")
    head, rest = text.split(README_BEGIN, 1)
    body = report_md.split("\n", 1)[1].strip()
    new = f"{head}{README_BEGIN}\n{body}\n{README_END}{rest.split(README_END, 1)[1]}"
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw_offload.synth",
                                description=f"Yosys {LABEL} of the array and the vector unit")
    p.add_argument("--config", action="append", default=None, metavar="NAME",
                   help=f"named configuration (repeatable; default: all of {sorted(NAMED)})")
    p.add_argument("--module", action="append", default=None, choices=TARGETS + OTHER_UNITS,
                   help="unit to synthesize (repeatable; default: all)")
    p.add_argument("--out", default=None,
                   help="also write synth.md and synth.json here (the committed run: "
                        "benchmarks/results/cpu-2core/hw)")
    p.add_argument("--keep-going", action="store_true",
                   help="after a unit fails, go on and list it in the report as not "
                        "synthesized (the exit status is still 1)")
    p.add_argument("--update-readme", action="store_true",
                   help="copy the report into hw_offload/README.md (with --out, when refreshing "
                        "the committed run)")
    p.add_argument("--jobs", type=int, default=1, help="Yosys runs at a time (one core each)")
    p.add_argument("--no-cache", action="store_true",
                   help="re-run Yosys even where an identical earlier run is cached")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per Yosys run")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs must be at least 1, got {a.jobs}")
    try:
        cfgs = [get_config(n) for n in (a.config or sorted(NAMED))]
        exe = find_yosys()
    except (KeyError, YosysNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    version = yosys_version(exe)
    targets = tuple(a.module or TARGETS)
    outcomes = run_units([c.name for c in cfgs], targets, a.jobs, a.timeout, not a.no_cache)
    failures = [o for o in outcomes if isinstance(o, SynthFailure)]
    results = [o for o in outcomes if isinstance(o, SynthResult)]
    if failures and not a.keep_going:
        return 1
    command = "python -m hw_offload.synth" + "".join(f" {x}" for x in (argv if argv is not None
                                                                        else sys.argv[1:]))
    md = markdown(results, command, version, failures)
    print()
    print(md)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "synth.md").write_text(md)
        (out / "synth.json").write_text(json.dumps(
            {"label": LABEL, "yosys": version, "command": command, "machine": platform.node(),
             "date": time.strftime("%Y-%m-%d"), "results": [asdict(r) for r in results],
             "failures": [asdict(f) for f in failures]},
            indent=1) + "\n")
        print(f"wrote {out / 'synth.md'} and {out / 'synth.json'}")
    if a.update_readme and sync_readme(md):
        print(f"updated the synthesis table in {README}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
