#!/usr/bin/env bash
# Version 1 alone through the shared profilers. Extra flags go to `python -m benchmarks.profiling`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh "test,hw" "profile"
exec "$PY" -m benchmarks.profiling --versions v1 "$@"
