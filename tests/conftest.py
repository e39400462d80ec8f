"""Shared pytest setup. Markers are declared in pyproject.toml."""
import pytest
import torch


def pytest_collection_modifyitems(config, items):
    # `gpu` tests need a CUDA/ROCm device; skip them (with the reason) where there is none.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
