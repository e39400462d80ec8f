#!/usr/bin/env bash
# Profile version 3 with the shared profiling code, then each kernel on its own.
# Usage: version3_triton/run_all_profilers.sh [OUT_DIR] [PRESET]
# The per-kernel step needs a GPU; without one it says so and the script still fails loudly
# (exit 2) rather than reporting a profile it did not take.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/profiles/v3}"
PRESET="${2:-tiny}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
"$PY" -m benchmarks.profiling --version v3 --preset "$PRESET" --out "$OUT"
"$PY" -m version3_triton.profile_kernels --out "$OUT/kernels"
