"""Shared pytest setup. Markers are declared in pyproject.toml."""
import os

import torch

# Without a GPU, Triton kernels can only run in the interpreter. Triton reads this when a
# kernel is defined, so it must be set before any test module imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # `sweep` tests draw fresh random seeds (printed for replay): never part of a default run,
    # so the default suite is deterministic. HW_SWEEP=1 turns them on.
    if not os.environ.get("HW_SWEEP"):
        skip_sweep = pytest.mark.skip(reason="random-seed sweep; set HW_SWEEP=1 to run")
        for item in items:
            if "sweep" in item.keywords:
                item.add_marker(skip_sweep)
    # `gpu` tests need a CUDA/ROCm device; skip them (with the reason) where there is none.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
