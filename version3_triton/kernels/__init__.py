"""One Triton kernel per file: the ``@triton.jit`` code, its ``autograd.Function``, and a
small functional entry point."""
