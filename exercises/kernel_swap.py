"""pytest plugin (``-p exercises.kernel_swap``): load a learner's kernel file as a project module.

``EXERCISE_KERNEL_MODULE`` names the module (e.g. ``version3_triton.kernels.rms_norm``) and
``EXERCISE_KERNEL_FILE`` the file that replaces it. The file is executed under the module's
own name, so its relative imports (``from .. import runtime``) resolve as the original's do,
and both ``sys.modules`` and the parent package's attribute point to it before any test
module imports it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys


def _swap(name: str, path: str):
    # Triton reads TRITON_INTERPRET when a kernel is defined: importing the runtime first
    # sets it where there is no GPU, exactly as the real module would have.
    parent_name, _, leaf = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    setattr(parent, leaf, module)
    return module


def pytest_configure(config):
    name, path = os.environ.get("EXERCISE_KERNEL_MODULE"), os.environ.get("EXERCISE_KERNEL_FILE")
    if not (name and path):
        raise RuntimeError("exercises.kernel_swap needs EXERCISE_KERNEL_MODULE and "
                           "EXERCISE_KERNEL_FILE (python -m exercises check sets both)")
    _swap(name, path)


def pytest_report_header(config):
    return (f"exercise: {os.environ['EXERCISE_KERNEL_MODULE']} loaded from "
            f"{os.environ['EXERCISE_KERNEL_FILE']}")
