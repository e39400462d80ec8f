"""Torch operators that would each launch a device kernel, counted on any machine.

Without a GPU the profiler sees no device kernels, yet a model's launch count is a property
of its code: every Triton call is one launch, and so is every torch operator that computes
something (a GEMM, an elementwise op, a copy). ``TorchOpLaunches`` counts the latter while a
step runs, at the aten level (after autograd and Python-level decompositions), and leaves out:

* views: operators whose output aliases an input (``view``, ``transpose``, ``slice``,
  ``split``, ``t``...), and ``_unsafe_view`` (matmul's reshape of a fresh result);
* bare allocations (``empty``, ``empty_strided``, ``new_empty``...): no kernel runs, memory
  is only reserved;
* operators that return no tensor (``item()``'s ``_local_scalar_dense``: a device-to-host
  copy, which the GPU count leaves out as memcpy too; ``promote_types``);
* everything inside a Triton launch: in the interpreter (``TRITON_INTERPRET=1``) a launch
  copies its arguments through torch, which is the interpreter's plumbing, not the model's.

On a GPU one counted operator is usually one kernel; a cuBLAS GEMM can be more than one, so
the profiler's device count (``benchmarks.counters.count_step``) stays the measurement there.
"""
from __future__ import annotations

import collections
import sys
from typing import Callable

from torch.utils._python_dispatch import TorchDispatchMode

NO_KERNEL = {"_unsafe_view", "empty", "empty_strided", "empty_like", "new_empty",
             "new_empty_strided"}


def _interpreter_launch_code():
    """The code object of the Triton interpreter's launch, or None (compiled Triton)."""
    try:
        from triton.runtime.interpreter import GridExecutor
    except ImportError:
        return None
    return GridExecutor.__call__.__code__


def launches_a_kernel(func) -> bool:
    """Whether aten operator ``func`` (an OpOverload) runs a kernel rather than only
    describing memory: not a view, not an allocation, returns a tensor."""
    if func.namespace != "aten" or func.overloadpacket.__name__ in NO_KERNEL:
        return False
    returns = func._schema.returns
    if not any("Tensor" in str(r.type) for r in returns):
        return False
    return not any(r.alias_info is not None and not r.alias_info.is_write for r in returns)


class TorchOpLaunches(TorchDispatchMode):
    """``with TorchOpLaunches() as c: step()``; then ``c.ops`` maps ``aten.<op>.<overload>``
    to how many times it ran outside Triton launches and launches a kernel (see the module
    docstring), and ``c.total()`` sums them."""

    def __init__(self):
        super().__init__()
        self.ops: collections.Counter = collections.Counter()
        self._launch = _interpreter_launch_code()

    def _inside_triton_launch(self) -> bool:
        if self._launch is None:
            return False
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code is self._launch:
                return True
            frame = frame.f_back
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if launches_a_kernel(func) and not self._inside_triton_launch():
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))

    def total(self) -> int:
        return sum(self.ops.values())


def count_torch_ops(step: Callable[[], object]) -> dict[str, int]:
    """Run ``step`` once; -> ``{aten op: count}`` of the operators that launch a kernel."""
    with TorchOpLaunches() as counter:
        step()
    return dict(sorted(counter.ops.items()))
