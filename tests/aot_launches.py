"""Compile the Triton launches a call really makes, for a GPU that is not here.

Run only in a process with ``TRITON_INTERPRET=0`` (``run_script`` starts one): the kernels
are then ``JITFunction``s that ``triton.compile`` accepts. ``record`` calls the model's own
entry point on CPU tensors with every launch intercepted (nothing runs), so the compiled
signature, constexprs, block sizes and ``num_warps`` are exactly the model's;
``block_sizes.assume_target`` picks the target's row of the config table.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {"sm_90": ("cuda", 90, 32), "sm_80": ("cuda", 80, 32), "gfx942": ("hip", "gfx942", 64)}
LIMIT_SHARED = {"sm_90": 232448, "sm_80": 166912, "gfx942": 65536}  # bytes per program


def run_script(code: str, tmp_path, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter-off Python; returns stdout, raises on failure."""
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_CACHE_DIR=str(tmp_path),
               TRITON_DEFAULT_FP_FUSION="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode:
        raise AssertionError(f"compile script failed:\n{done.stderr[-3000:]}")
    return done.stdout


def record(call, family: str):
    """[(kernel, args, kwargs)] of every launch ``call()`` makes, configs for ``family``."""
    import torch
    from triton.runtime.jit import JITFunction

    from version3_triton import block_sizes, runtime
    launches = []
    original_run, original_device = JITFunction.run, runtime.DEVICE

    def intercept(self, *args, grid, warmup, **kwargs):
        launches.append((self, args, kwargs))

    JITFunction.run, runtime.DEVICE = intercept, torch.device("cpu")
    try:
        with block_sizes.assume_target(family):
            call()
    finally:
        JITFunction.run, runtime.DEVICE = original_run, original_device
    return launches


def compile_launch(launch, target: str) -> dict:
    """Compile one recorded launch: {"shared": bytes, "tensor_cores": bool, "asm": text}."""
    import re

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import mangle_type
    kernel, args, kwargs = launch
    options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages", "launch_cooperative_grid")
               if k in kwargs}
    values = dict(zip(kernel.arg_names, args), **kwargs)
    signature, constexprs = {}, {}
    for param in kernel.params:
        value = values[param.name]
        if param.is_constexpr:
            signature[param.name], constexprs[param.name] = "constexpr", value
        else:
            signature[param.name] = mangle_type(value)
    src = triton.compiler.ASTSource(kernel, signature, constexprs=constexprs)
    compiled = triton.compile(src, target=GPUTarget(*TARGETS[target]), options=options)
    asm = compiled.asm.get("amdgcn") or compiled.asm["ptx"]
    return {"shared": compiled.metadata.shared, "asm": asm,
            "tensor_cores": bool(re.search(r"wgmma|mma\.sync|v_mfma", asm))}
