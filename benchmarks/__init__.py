"""Shared run harness, result schema, profilers and the side-by-side benchmarks."""
import os as _os

import torch as _torch

# Without a GPU, Triton kernels can run only in the interpreter, and triton fixes that
# choice when it is first imported (torch._dynamo imports it). Decide before anything can.
if not _torch.cuda.is_available():
    _os.environ.setdefault("TRITON_INTERPRET", "1")
