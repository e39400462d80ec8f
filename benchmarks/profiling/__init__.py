"""Profilers shared by every version: torch.profiler, DeepSpeed FLOPS, vendor tools.

``python -m benchmarks.profiling --versions v1 --preset tiny --out DIR`` runs them all;
each version's ``run_all_profilers.sh`` is a thin call of that.
"""
