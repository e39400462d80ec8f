"""How the Triton kernels of version 3 run on this machine, decided once at import.

* A CUDA/ROCm GPU is present: kernels are compiled and run on the GPU (CUDA tensors).
* No GPU: ``TRITON_INTERPRET=1`` is set before any kernel module is imported (triton
  reads it when ``@triton.jit`` decorates a function), so every kernel becomes a
  Python/numpy interpreter over CPU tensors. That is
  how CI tests the kernels. It is slow, runs programs one after another, and is a
  correctness tool only: never time it.

An explicit ``TRITON_INTERPRET`` in the environment wins (``=1`` forces the interpreter
even with a GPU, useful for debugging out-of-bounds accesses).

Also here, because every kernel file needs them:
* ``CALLS``: a counter of Triton launches per kernel, so tests (and ``describe()``) can
  prove that the kernels really ran in forward *and* backward.
* ``new_output``: the one allocator of kernel outputs. Inside ``poison_outputs()`` it fills
  with NaN instead of leaving memory uninitialized, so an element a kernel forgets to
  write shows up as NaN in the test instead of as a plausible stale value.
* ``check_tensor``: the boundary check shared by every functional entry point.
* ``CONFIGS``: the block sizes each kernel ran with (chosen in ``block_sizes``).
"""
from __future__ import annotations

import collections
import contextlib
import os

import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
MODE = "interpreter" if INTERPRET else "compiled"
# Where kernel tensors must live: the interpreter reads host memory, compiled kernels GPU memory.
DEVICE = torch.device("cpu") if INTERPRET else torch.device("cuda")
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

import triton  # noqa: E402


def _interpret_triton_language() -> int:
    """Make triton.language's own ``@triton.jit`` helpers interpretable; returns how many.

    ``tl.zeros``, ``tl.sigmoid``, ``tl.sum``... are themselves jit functions, and ``@jit``
    picks compiled or interpreted when ``triton.language`` is first imported. Importing torch
    modules (version 1's model) can import triton before this file runs; those helpers are
    then compiled-mode ``JITFunction``s and any kernel using them fails in the interpreter with
    "Cannot call @triton.jit'd outside of the scope of a kernel". Rewrap them in place.
    """
    import sys

    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    converted = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("triton.language") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, JITFunction):
                setattr(module, attr, InterpretedFunction(value.fn))
                converted += 1
    return converted


if INTERPRET:
    _interpret_triton_language()

CALLS: collections.Counter = collections.Counter()
# The block-size config each kernel last launched with ("kernel:dtype[:d<head_dim>]" ->
# label); filled by block_sizes.choose, reported by describe().
CONFIGS: dict = {}
_poison = False


def count(name: str) -> None:
    """Record one launch of the kernel ``name`` (cheap: a dict increment)."""
    CALLS[name] += 1


@contextlib.contextmanager
def poison_outputs():
    """Within this block, ``new_output`` returns NaN-filled tensors (test mode)."""
    global _poison
    previous, _poison = _poison, True
    try:
        yield
    finally:
        _poison = previous


def new_output(shape, dtype, device) -> torch.Tensor:
    """Allocate a tensor a kernel will fully overwrite (NaN-filled under ``poison_outputs``)."""
    if _poison:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


def check_tensor(t, name: str, dtypes=FLOAT_DTYPES, dim: int | None = None,
                 contiguous: bool = True) -> torch.Tensor:
    """Validate one kernel input; returns it contiguous (a copy only when it was not), or
    as it is with ``contiguous=False`` for kernels that take strides.

    Raises TypeError for a non-tensor or an unsupported dtype and ValueError for a wrong
    rank or a tensor on the wrong device for this run mode, each naming ``name``.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} has dtype {t.dtype}; supported: {allowed}")
    if dim is not None and t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}")
    if t.device.type != DEVICE.type:
        raise ValueError(
            f"{name} is on {t.device}, but Triton kernels run in {MODE} mode here and need "
            f"{DEVICE.type} tensors (set TRITON_INTERPRET=1 to run CPU tensors in the interpreter)")
    return t.contiguous() if contiguous else t


def describe() -> dict:
    """Facts for the result JSON: how kernels ran and how often each was launched."""
    return {"triton_mode": MODE, "triton_version": triton.__version__,
            "kernel_launches": dict(sorted(CALLS.items())),
            "kernel_configs": dict(sorted(CONFIGS.items()))}
