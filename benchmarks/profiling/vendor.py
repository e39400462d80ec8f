"""Vendor profilers (nsys, ncu on NVIDIA; rocprofv3, rocprof-sys, rocprof-compute on ROCm).

Each wraps a short CLI run of the version in a subprocess. A tool that is not on
PATH, or that belongs to the other vendor, is skipped with one line saying so; a
tool that fails is reported as failed with its exit code. Neither aborts the run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .steps import StepStatus


@dataclass(frozen=True)
class Tool:
    name: str
    binary: str
    vendor: str                      # "nvidia" or "rocm"
    args: tuple[str, ...]            # {out} is replaced by the output path prefix
    separator: tuple[str, ...] = ()  # what goes between the tool's flags and the program


TOOLS = [
    Tool("nsys", "nsys", "nvidia",
         ("profile", "--force-overwrite", "true", "--trace", "cuda,nvtx,osrt", "--stats", "true",
          "-o", "{out}")),
    Tool("ncu", "ncu", "nvidia",
         # The first 40 kernels after a warm-up are enough to see each kernel kind once.
         ("--target-processes", "all", "--launch-skip", "50", "--launch-count", "40",
          "--set", "basic", "-f", "-o", "{out}")),
    Tool("rocprofv3", "rocprofv3", "rocm", ("--kernel-trace", "--stats", "-d", "{out}"), ("--",)),
    Tool("rocprof-sys", "rocprof-sys-run", "rocm", ("-o", "{out}"), ("--",)),
    Tool("rocprof-compute", "rocprof-compute", "rocm", ("profile", "-n", "tinyllama", "-p", "{out}"),
         ("--",)),
]


def gpu_vendor() -> str | None:
    if not torch.cuda.is_available():
        return None
    return "rocm" if torch.version.hip else "nvidia"


def run_vendor_tools(program: list[str], out: Path, timeout_s: int | None = None
                     ) -> list[StepStatus]:
    """Run every vendor tool that applies to this machine around ``program``."""
    timeout_s = timeout_s or int(os.environ.get("VENDOR_PROFILER_TIMEOUT", "900"))
    vendor = gpu_vendor()
    statuses = []
    for tool in TOOLS:
        if vendor != tool.vendor:
            why = "no GPU on this machine" if vendor is None else f"this is a {vendor} machine"
            statuses.append(StepStatus(tool.name, "skipped", why))
            continue
        binary = shutil.which(tool.binary)
        if binary is None:
            statuses.append(StepStatus(tool.name, "skipped", f"{tool.binary} not found on PATH"))
            continue
        target = out / tool.name
        args = [a.replace("{out}", str(target)) for a in tool.args]
        cmd = [binary, *args, *tool.separator, sys.executable, *program]
        log = out / f"{tool.name}.log"
        try:
            with log.open("w") as f:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                                    timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            statuses.append(StepStatus(tool.name, "failed", f"timed out after {timeout_s} s; "
                                       f"see {log.name}"))
            continue
        if rc == 0:
            statuses.append(StepStatus(tool.name, "ok", f"report under {target.name}",
                                       [f"{out.name}/{log.name}"]))
        else:
            statuses.append(StepStatus(tool.name, "failed", f"exit code {rc}; see {log.name}"))
    return statuses
