#!/usr/bin/env bash
# Profile version 2 with every profiler the shared code runs: the PyTorch profiler, the
# DeepSpeed FLOPS profiler, and the vendor tools present on the machine (rocprofv3 /
# rocprof-sys / rocprof-compute on ROCm, nsys / ncu on CUDA). Thin on purpose: the logic
# lives in benchmarks.profiling. Every argument passes through, including v2's own flags:
#   version2_fused/run_all_profilers.sh --preset small --mode train --out runs/prof-v2
#   version2_fused/run_all_profilers.sh --fusions qkv,sdpa --compile default
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" -m benchmarks.profiling --versions v2 "$@"
