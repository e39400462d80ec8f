"""What machine and software a number was measured on. Recorded with every result."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import torch

from .validation import check_device

REPO_ROOT = Path(__file__).resolve().parent.parent


def best_device(requested: str = "auto") -> torch.device:
    """``auto`` -> the GPU if one is present (CUDA or ROCm), else the CPU; otherwise the
    named device, refused (``UserError``) when unknown or absent here."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(requested)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@lru_cache(maxsize=None)
def git_sha() -> str:
    """Short sha of HEAD, with '-dirty' when the tree has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def triton_version() -> str | None:
    """The installed triton's version, read from package metadata.

    Not ``import triton``: importing it here, before a Triton version has decided whether
    to set TRITON_INTERPRET, would fix the interpreter choice too early.
    """
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("triton", "pytorch-triton-rocm", "pytorch-triton"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_name()} ({os.cpu_count()} cores)"


def driver_version() -> str | None:
    if torch.version.hip:
        return f"ROCm/HIP {torch.version.hip}"
    if torch.cuda.is_available():
        return f"CUDA {torch.version.cuda}"
    return None


def machine_info(device: torch.device) -> dict:
    """Everything that identifies where and with what a result was measured."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        "driver": driver_version(),
        "host": platform.node(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version(),
        "git_sha": git_sha(),
        "slug": machine_slug(device),
    }


def machine_slug(device: torch.device) -> str:
    """A folder name for ``benchmarks/results/<slug>/``, e.g. ``nvidia-h200`` or ``cpu-2core``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).lower()
        return re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"cpu-{os.cpu_count()}core"


def default_out(kind: str) -> Path:
    """Where a command writes when ``--out`` is not given: ``results/<date-time>/<kind>``.

    ``results/`` is ignored by git, so no command overwrites committed results unless
    its ``--out`` points into ``benchmarks/results/`` on purpose.
    """
    return REPO_ROOT / "results" / time.strftime("%Y%m%d-%H%M%S") / kind


def run_timestamp() -> str:
    """ISO-8601 local time with offset, as recorded on every result row."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
