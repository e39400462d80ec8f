"""The compile gate: compile every Triton launch of versions 3 and 4 for real GPUs, on CPU."""
