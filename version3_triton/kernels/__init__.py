"""One Triton kernel per file: ``@triton.jit`` code, its ``autograd.Function``, a functional entry."""
