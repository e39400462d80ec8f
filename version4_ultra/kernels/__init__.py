"""Version 4's fused kernels: one fused sub-block (or the decode layer) per file."""
