"""Mutation score of the RTL verification: does the suite notice a one-line bug?

    python -m hw_offload.mutate [--only ID,ID] [--programs 300] [--out report.md]

For each mutant in ``mutants.json`` (file, original line text, replacement, description) it
copies ``hw_offload/rtl`` to a temporary directory, applies the one change there (the tracked
sources are never edited), builds the ``test`` variant from the copy (``HW_RTL_DIR``, see
build.py), then runs

1. the differential fuzzer (fuzz.py) for ``--programs`` programs from ``--seed``, and, if that
   passes,
2. the suite's fast RTL tests (``TESTS`` below) with pytest against the same build.

A mutant is killed when either fails (or the build runs into a wall-clock timeout). The
unmutated RTL is checked first, so a kill means the mutation, not a broken baseline. Exit
status 1 if any mutant survives (or the baseline fails), 0 when every one is killed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .build import RTL_DIR, build

HW_DIR = Path(__file__).resolve().parent
REPO = HW_DIR.parent
MUTANTS = HW_DIR / "mutants.json"
TESTS = ("tests/test_rtl_units.py", "tests/test_rtl_errors.py", "tests/test_rtl_block.py",
         "tests/test_rtl_cycles.py", "tests/test_rtl_banks.py")
STAGE_TIMEOUT_S = 900


@dataclass
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    description: str
    nth: int = 1

    def apply(self, rtl_dir: Path) -> None:
        """Replace the ``nth`` occurrence of ``original`` in ``rtl_dir/file``; it must exist."""
        path = rtl_dir / self.file
        text = path.read_text()
        at = -1
        for _ in range(self.nth):
            at = text.find(self.original, at + 1)
            if at < 0:
                raise ValueError(f"mutant {self.id}: occurrence {self.nth} of {self.original!r} not "
                                 f"found in {self.file}; update mutants.json to the current RTL")
        path.write_text(text[:at] + self.replacement + text[at + len(self.original):])


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    return [Mutant(**m) for m in json.loads(path.read_text())["mutants"]]


def _run(cmd: list[str], env: dict) -> tuple[bool, str]:
    """-> (passed, last lines of output)."""
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=STAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {STAGE_TIMEOUT_S} s"
    out = (p.stdout + p.stderr).strip().splitlines()
    return p.returncode == 0, "\n".join(out[-6:])


def verdict(rtl_dir: Path | None, programs: int, seed: int, tests: bool = True) -> tuple[str, str]:
    """Build the RTL in ``rtl_dir`` (None: the tracked sources) and run fuzzer then tests.
    -> (what failed first, or "" if everything passed; its output)."""
    env = dict(os.environ)
    env.pop("HW_TEST_SEED", None)
    if rtl_dir is not None:
        env["HW_RTL_DIR"] = str(rtl_dir)
    old = os.environ.get("HW_RTL_DIR")
    os.environ["HW_RTL_DIR"] = str(rtl_dir or RTL_DIR)
    try:
        lib = build("test")
    except Exception as e:   # a mutant that does not compile is reported, not counted as killed
        return "build", str(e)[-600:]
    finally:
        if old is None:
            os.environ.pop("HW_RTL_DIR")
        else:
            os.environ["HW_RTL_DIR"] = old
    py = sys.executable
    try:
        ok, out = _run([py, "-m", "hw_offload.fuzz", "--lib", str(lib), "--seed", str(seed),
                        "--programs", str(programs)], env)
        if not ok:
            return "fuzzer", out
        if tests:
            ok, out = _run([py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS], env)
            if not ok:
                return "tests", out
        return "", out
    finally:
        if rtl_dir is not None:   # mutant builds are one-off: do not fill the cache
            shutil.rmtree(lib.parent, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="mutation score of the RTL tests + fuzzer")
    p.add_argument("--only", default="", help="comma-separated mutant ids (default: all)")
    p.add_argument("--programs", type=int, default=300, help="fuzz programs per mutant")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the markdown report here")
    a = p.parse_args(argv)
    mutants = load_mutants()
    if a.only:
        want = set(a.only.split(","))
        unknown = want - {m.id for m in mutants}
        if unknown:
            p.error(f"unknown mutant ids {sorted(unknown)}")
        mutants = [m for m in mutants if m.id in want]
    t0 = time.time()
    failed, out = verdict(None, a.programs, a.seed)
    if failed:
        print(f"baseline (unmutated RTL) fails its {failed}:\n{out}")
        return 1
    rows, survived = [], 0
    for m in mutants:
        t = time.time()
        with tempfile.TemporaryDirectory(prefix=f"mutant-{m.id}-") as tmp:
            d = Path(tmp) / "rtl"
            shutil.copytree(RTL_DIR, d)
            m.apply(d)
            failed, out = verdict(d, a.programs, a.seed)
        status = {"": "SURVIVED", "build": "BUILD FAILED"}.get(failed, f"killed by {failed}")
        survived += status != "killed by fuzzer" and status != "killed by tests"
        rows.append((m, status, time.time() - t))
        print(f"{m.id:22s} {status:18s} {time.time() - t:6.0f} s  {m.description}", flush=True)
        if failed not in ("fuzzer", "tests"):
            print("   " + out.replace("\n", "\n   "))
    killed = len(rows) - survived
    lines = [f"# RTL mutation score: {killed}/{len(rows)} killed",
             "",
             f"`python -m hw_offload.mutate --programs {a.programs} --seed {a.seed}` on "
             f"{platform.node() or 'this machine'} ({os.cpu_count()} CPUs), "
             f"{time.strftime('%Y-%m-%d')}, {time.time() - t0:.0f} s in all. Each mutant: fuzzer "
             f"({a.programs} programs), then if it survives `pytest {' '.join(TESTS)}`.",
             "",
             "| mutant | file | change | result | seconds |",
             "|---|---|---|---|---|"]
    for m, status, sec in rows:
        lines.append(f"| `{m.id}` | {m.file} | {m.description} | {status} | {sec:.0f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(report)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
