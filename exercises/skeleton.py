"""Kernel exercises: skeletons generated from the project's own kernels, checked by its tests.

A kernel file marks the lines a learner writes::

    # exercise: begin <region>
    ...the solution...
    # exercise: end

``skeleton(exercise)`` replaces each marked region of the exercise by one ``YOUR CODE``
comment (same indentation), so the skeleton and the solution never drift apart: the
solution *is* the project's kernel. ``run_kernel_tests`` runs the kernel's own test file
in a fresh pytest process with ``exercises.kernel_swap`` loading the learner's file in
place of the project's module (in the Triton interpreter on a machine without a GPU).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .catalog import REPO_ROOT, RUNGS

BEGIN = re.compile(r"^(\s*)# exercise: begin (\S+)\s*$")
END = re.compile(r"^\s*# exercise: end\s*$")


@dataclass(frozen=True)
class KernelExercise:
    module: str            # dotted name the learner's file replaces
    regions: tuple[str, ...]   # marked regions removed from the skeleton
    tests: str             # the project's test file for this kernel (repository-relative)
    test_filter: str | None = None   # pytest -k expression, None: the whole file

    @property
    def source(self) -> Path:
        return REPO_ROOT / (self.module.replace(".", "/") + ".py")


KERNEL_EXERCISES = {
    "v3-rmsnorm": KernelExercise("version3_triton.kernels.rms_norm", ("rmsnorm-fwd", "rmsnorm-bwd"),
                                 "tests/test_kernel_rms_norm.py"),
    "v3-online-softmax": KernelExercise("version3_triton.kernels.flash_attention",
                                        ("online-softmax",), "tests/test_kernel_flash_attention.py"),
}


def regions(text: str) -> list[tuple[str, int, int]]:
    """(region, first line, last line) of every marked region, 0-based, markers included."""
    found, open_at = [], None
    for i, line in enumerate(text.splitlines()):
        m = BEGIN.match(line)
        if m:
            if open_at is not None:
                raise ValueError(f"line {i + 1}: 'exercise: begin' inside an open region")
            open_at = (m.group(2), i)
        elif END.match(line):
            if open_at is None:
                raise ValueError(f"line {i + 1}: 'exercise: end' without a begin")
            found.append((open_at[0], open_at[1], i))
            open_at = None
    if open_at is not None:
        raise ValueError(f"region {open_at[0]!r} opened on line {open_at[1] + 1} is never closed")
    return found


def skeleton(exercise_id: str) -> str:
    """The kernel file with this exercise's regions replaced by a ``YOUR CODE`` comment."""
    ex = kernel_exercise(exercise_id)
    text = ex.source.read_text()
    lines = text.splitlines()
    marked = [r for r in regions(text) if r[0] in ex.regions]
    missing = set(ex.regions) - {r[0] for r in marked}
    if missing:
        raise ValueError(f"{ex.source} has no marked region {sorted(missing)}")
    out, cut = [], {i: r for r in marked for i in range(r[1], r[2] + 1)}
    for i, line in enumerate(lines):
        if i not in cut:
            out.append(line)
        elif i == cut[i][1]:
            indent = BEGIN.match(line).group(1)
            out.append(f"{indent}# YOUR CODE ({cut[i][0]}): see exercises/{RUNGS[exercise_id]}/{exercise_id}.md")
    return "\n".join(out) + "\n"


def kernel_exercise(exercise_id: str) -> KernelExercise:
    if exercise_id not in KERNEL_EXERCISES:
        raise KeyError(f"{exercise_id!r} is not a kernel exercise; kernel exercises are "
                       f"{', '.join(KERNEL_EXERCISES)}")
    return KERNEL_EXERCISES[exercise_id]


def run_kernel_tests(exercise_id: str, file: Path, extra: list[str] | None = None,
                     ) -> subprocess.CompletedProcess:
    """Run the kernel's own tests with ``file`` loaded as the kernel module (stops at the
    first failure). Returns the finished pytest process (returncode 0: all passed)."""
    ex = kernel_exercise(exercise_id)
    file = Path(file).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no file {file}: write the skeleton with `python -m exercises "
                                f"skeleton {exercise_id} --out {file.name}` and complete it")
    tests = REPO_ROOT / ex.tests
    if not tests.is_file():
        raise FileNotFoundError(f"{tests} is missing: the kernel checks need a source checkout")
    env = dict(os.environ, EXERCISE_KERNEL_MODULE=ex.module, EXERCISE_KERNEL_FILE=str(file))
    cmd = [sys.executable, "-m", "pytest", str(tests), "-q", "-x", "-p", "exercises.kernel_swap",
           "-p", "no:cacheprovider", *(["-k", ex.test_filter] if ex.test_filter else []),
           *(extra or [])]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
