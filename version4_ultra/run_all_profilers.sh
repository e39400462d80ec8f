#!/usr/bin/env bash
# Profile version 4 with the shared profilers (benchmarks.profiling: PyTorch profiler,
# DeepSpeed FLOPS profiler, nsys/ncu or rocprof* where present), then the kernel-count
# report (launches per forward step and per decoded token, v1..v4, counted on the device).
# Thin on purpose: the logic lives in Python. Flags pass through to benchmarks.profiling:
#   version4_ultra/run_all_profilers.sh --preset small --mode decode --out runs/prof-v4
# Without a GPU the kernel count refuses (exit 2) instead of printing numbers; this script
# reports that and keeps the profiler's own status.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
"$PYTHON" -m benchmarks.profiling --versions v4 "$@"
status=0
"$PYTHON" -m version4_ultra.kernel_count --versions v1,v2,v3,v4 || status=$?
if [ "$status" -eq 2 ]; then
  echo "[v4] kernel count not taken: no GPU (see the message above)" >&2
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
