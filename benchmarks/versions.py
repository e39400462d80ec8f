"""Every runnable thing in the speedup table, by name, and whether it can run here.

A version that cannot run on this machine is reported with the reason, never timed
and never given a number.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch

from version1_baseline.spec import VersionSpec


@dataclass(frozen=True)
class Entry:
    name: str
    module: str          # package exposing SPEC
    label: str           # what the row is, for tables
    triton: bool = False  # needs compiled Triton kernels (a GPU) to be worth timing


ENTRIES: dict[str, Entry] = {e.name: e for e in [
    Entry("v1", "version1_baseline", "eager PyTorch (reference)"),
    Entry("v2", "version2_fused", "fused PyTorch"),
    Entry("v3", "version3_triton", "Triton kernels", triton=True),
    Entry("v4", "version4_ultra", "ultra-fused Triton", triton=True),
    Entry("compile", "benchmarks.compile_peer", "torch.compile(v1)"),
    # The RTL accelerator's row is an estimate at a stated clock from counted cycles; it
    # arrives with the torch.compile backend (hw_offload part 2).
    Entry("rtl", "hw_offload.backend", "RTL accelerator (estimated at its clock)"),
]}


class Unavailable(Exception):
    """This version cannot run here; the message says why (it goes into the table)."""


def names() -> list[str]:
    return list(ENTRIES)


def parse_names(text: str) -> list[str]:
    """``"v1,v2"`` or ``"all"`` -> list of names; raises ValueError for an unknown name."""
    chosen = names() if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in chosen if n not in ENTRIES]
    if unknown:
        raise ValueError(f"unknown version(s) {unknown}; choose from {names()} or 'all'")
    return chosen


def load_spec(name: str, device: torch.device, allow_interpreter: bool = False) -> VersionSpec:
    """Import the version's SPEC, or raise ``Unavailable`` with a reason a reader can act on."""
    entry = ENTRIES[name]
    if name == "rtl":
        raise Unavailable("rtl: the accelerator's time is estimated from simulated cycles, not "
                          "run as a PyTorch model, so no profiler applies; its rows are in the "
                          "speedup table and in `python -m benchmarks.hw`")
    if entry.triton:
        try:
            importlib.import_module("triton")   # a probe: is it installed?
        except ImportError:
            raise Unavailable(f"{name}: triton is not installed") from None
        if device.type != "cuda" and not allow_interpreter:
            raise Unavailable(f"{name}: no GPU: Triton kernels run only in the interpreter "
                              "(too slow to time; pass --allow-interpreter to run anyway)")
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name and entry.module.startswith(exc.name.split(".")[0]):
            raise Unavailable(f"{name}: package {entry.module} is not in this checkout") from None
        raise
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, VersionSpec):
        raise Unavailable(f"{name}: {entry.module} has no SPEC (VersionSpec)")
    return spec
