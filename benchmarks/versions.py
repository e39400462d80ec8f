"""Every runnable thing in the speedup table, by name, and whether it can run here.

A version that cannot run on this machine is reported with the reason, never timed
and never given a number.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from version1_baseline.config import TinyLlamaConfig, require_config
from version1_baseline.errors import UserError
from version1_baseline.spec import VersionSpec

from .sdpa_backend import describe_sdpa
from .validation import check_device, check_dtype


@dataclass(frozen=True)
class Entry:
    name: str
    module: str          # package exposing SPEC
    label: str           # what the row is, for tables
    triton: bool = False  # needs compiled Triton kernels (a GPU) to be worth timing
    observes_sdpa: bool = False  # the harness reports which SDPA backend its runs used


ENTRIES: dict[str, Entry] = {e.name: e for e in [
    Entry("v1", "version1_baseline", "eager PyTorch (reference)"),
    Entry("v2", "version2_fused", "fused PyTorch", observes_sdpa=True),
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
    """``"v1,v2"`` or ``"all"`` -> list of names; raises UserError for an unknown name."""
    chosen = names() if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in chosen if n not in ENTRIES]
    if unknown:
        raise UserError(f"unknown version(s) {unknown}; choose from {names()} or 'all'")
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


def build_model(spec: VersionSpec, config: TinyLlamaConfig, weights: dict | None,
                device: torch.device, options=None, dtype: torch.dtype = torch.float32):
    """The one way every tool builds a version's model.

    weights: a Hugging Face Llama state dict to load, or None to keep the seeded init (the
    caller seeds). options: an instance of ``spec.options`` (None: its defaults).
    device: a ``torch.device`` or its string (cpu, cuda[:N]). dtype: the run's compute dtype
    (float32, bfloat16, float16), handed to ``spec.prepare``. Returns the model on
    ``device``, weights loaded, prepared (e.g. compiled). Wrong types raise ``TypeError``,
    bad values ``UserError``, before anything is built.
    """
    if not isinstance(spec, VersionSpec):
        raise TypeError(f"spec must be a VersionSpec (a version's SPEC), got "
                        f"{type(spec).__name__}")
    require_config(config)
    if weights is not None and not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a state dict (name -> tensor) or None, got "
                        f"{type(weights).__name__}")
    device, dtype = check_device(device), check_dtype(dtype)
    options = spec.options() if options is None else options
    if not isinstance(options, spec.options):
        raise TypeError(f"{spec.name} takes options of type {spec.options.__name__}, got "
                        f"{type(options).__name__}")
    model = spec.build(config, options) if spec.build else spec.model_cls(config)
    if weights is not None:
        model.load_hf_state_dict(weights)
    model = model.to(device)
    if spec.prepare:
        model = spec.prepare(model, options, device, dtype)
    return model


def describe_run(spec: VersionSpec, model: torch.nn.Module, *, mode: str, batch_size: int,
                 seq_len: int, device: torch.device, dtype: torch.dtype) -> dict:
    """JSON ``extra`` of one run: the version's own facts, plus what the harness observes
    on this run's workload (v2: the SDPA backend that actually ran) and a summary line."""
    facts = spec.describe(model) if spec.describe else {}
    entry = ENTRIES.get(spec.name)
    if entry is not None and entry.observes_sdpa:
        facts.update(describe_sdpa(model, mode, batch_size, seq_len, device, dtype))
        facts["summary"] = (f"{spec.name} fusions [{facts['fusion_label']}]; SDPA backend: "
                            f"{facts['sdpa_backend']}" +
                            (f" ({facts['sdpa_note']})" if "sdpa_note" in facts else ""))
    return facts
