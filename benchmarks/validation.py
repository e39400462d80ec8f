"""The checks at the project's boundaries, and how an entry point reports a ``UserError``.

Three boundaries call these checks before any long work starts:

- a version's command line (``python -m versionN_* ...``, ``benchmarks.cli``);
- ``python -m benchmarks run|plot|readme`` (``benchmarks.__main__``);
- the Python API (``build_model``, ``run_workload``, ``run_preset``).

A bad value raises ``UserError`` (``version1_baseline.errors``) naming the value and what
was expected. An entry point wrapped in ``cli_boundary`` prints it as ONE line on stderr
and exits 2; ``--debug`` or ``TINYLLAMA_DEBUG=1`` re-raises it with its traceback instead.
Every other exception is a bug: it keeps its traceback and Python's exit status 1.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import torch

from version1_baseline.errors import UserError

DEBUG_ENV = "TINYLLAMA_DEBUG"
DEBUG_FLAG = "--debug"
MODES = ("train", "prefill", "decode")
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# ---- entry points ---------------------------------------------------------------------------
class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose errors are ``UserError``: one line, not the usage block.

    (Subparsers made by ``add_subparsers`` inherit the class.)
    """

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"on an input error show the traceback (also: {DEBUG_ENV}=1)")


def debug_requested(argv: Iterable[str]) -> bool:
    """True when ``--debug`` is among the arguments or ``TINYLLAMA_DEBUG`` is set (not 0)."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def cli_boundary(main):
    """Decorate an entry point ``main(..., argv=None) -> int``.

    A ``UserError`` becomes ``error: <message>`` on stderr and ``SystemExit(2)``; with
    ``--debug`` in ``argv`` (or ``TINYLLAMA_DEBUG=1``) it propagates with its traceback.
    ``--debug`` is read from the raw arguments because the error may be argparse's own.
    """
    signature = inspect.signature(main)

    @functools.wraps(main)
    def entry(*args, **kwargs):
        argv = signature.bind(*args, **kwargs).arguments.get("argv")
        argv = sys.argv[1:] if argv is None else list(argv)
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            if debug_requested(argv):
                raise
            message = " ".join(str(exc).split())    # one line, whatever the message holds
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2) from None

    return entry


# ---- values ---------------------------------------------------------------------------------
def _spell(field: str, flags: bool) -> str:
    """How the caller wrote a setting: ``--batch-size`` on a command line, else ``batch_size``."""
    return "--" + field.replace("_", "-") if flags else field


def require_int(value, name: str, minimum: int) -> int:
    """``value`` if it is an int >= ``minimum``; else ``UserError`` naming ``name`` and it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        expected = "positive" if minimum == 1 else f">= {minimum}"
        raise UserError(f"{name} must be {expected}, got {value!r}")
    return value


def check_modes(modes: Iterable[str]) -> list[str]:
    """A non-empty list of known workload names."""
    modes = list(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        what = f"unknown mode(s) {unknown}" if unknown else "no mode given"
        raise UserError(f"{what}; choose from {', '.join(MODES)}")
    return modes


def check_workload(*, modes: Iterable[str], batch_size, seq_len, max_seq_len: int,
                   steps=None, warmup=None, where: str = "the model", flags: bool = False
                   ) -> None:
    """Refuse a workload that cannot run or would mean something else than asked.

    batch_size >= 1; 1 <= seq_len <= max_seq_len, and >= 2 for train and decode (a target
    or a prompt plus the decoded token); steps >= 1 and warmup >= 0 when given. ``where``
    names whose max_seq_len it is (``"preset tiny"``); ``flags``: name the settings as
    command-line flags.
    """
    modes = check_modes(modes)
    require_int(batch_size, _spell("batch_size", flags), 1)
    require_int(seq_len, _spell("seq_len", flags), 1)
    needs_two = [m for m in modes if m in ("train", "decode")]
    if seq_len == 1 and needs_two:
        raise UserError(f"{_spell('seq_len', flags)} must be >= 2 for {' and '.join(needs_two)} "
                        "(a prediction needs a previous token), got 1")
    if seq_len > max_seq_len:
        raise UserError(f"{_spell('seq_len', flags)} {seq_len} exceeds {where}'s max_seq_len "
                        f"{max_seq_len}")
    if steps is not None:
        require_int(steps, _spell("steps", flags), 1)
    if warmup is not None:
        require_int(warmup, _spell("warmup", flags), 0)


def check_dtype(dtype) -> torch.dtype:
    """The compute dtype of a run: float32, or bfloat16 / float16 (autocast)."""
    if dtype not in _DTYPES:
        raise UserError(f"dtype must be one of torch.float32, torch.bfloat16, torch.float16; "
                        f"got {dtype!r}")
    return dtype


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` this project runs on (cpu, cuda[:N]) and this machine has.

    Accepts a ``torch.device`` or its string; ``UserError`` otherwise.
    """
    text = str(device)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"unknown device {text!r}; expected auto, cpu, cuda or cuda:<index>"
                        ) from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {text!r} is not supported; expected auto, cpu, cuda or "
                        "cuda:<index>")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {text!r} requested but no CUDA/ROCm GPU is available; "
                            "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {text!r}: this machine has {torch.cuda.device_count()} "
                            "GPU(s), numbered from 0")
    return device


# ---- paths ----------------------------------------------------------------------------------
def _probe_folder(folder: Path, name: str) -> None:
    """Create ``folder`` (and parents) and write a scratch file in it, or raise ``UserError``.

    Trying is the only honest test: permission bits say nothing for root, a read-only
    mount or a parent that is a file.
    """
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{name}: {existing} is a file; expected a writable folder there")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"{name}: cannot write into {folder} ({exc.strerror or exc}); "
                        "expected a writable folder") from None


def check_writable_file(path, name: str) -> Path:
    """Before a long run: ``path`` can be written as a file (its folder is created)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{name} {path} is a folder; expected a file path")
    _probe_folder(path.parent, f"{name} {path}")
    return path


def check_writable_folder(path, name: str) -> Path:
    """Before a long run: ``path`` is, or can be created as, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{name} {path} is a file; expected a folder")
    _probe_folder(path, f"{name} {path}")
    return path


def check_existing_folder(path, name: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{name} {path}: no such folder")
    return path
