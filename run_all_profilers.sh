#!/usr/bin/env bash
# The main job: set up .venv, time every version side by side, then profile each one.
#   bash run_all_profilers.sh                 # default preset (tiny), best device
#   PRESET=small MODE=prefill bash run_all_profilers.sh
#   VERSIONS=v2 bash run_all_profilers.sh --fusions qkv,sdpa   # what version2_fused/ runs
# Environment: PRESET, MODE, VERSIONS, STEPS, RESULTS_DIR, BENCH_ARGS (see README).
# Arguments go to `python -m benchmarks.profiling` (a version's own flags, e.g. --fusions).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup_env.sh "test,hw" "profile"

PRESET="${PRESET:-tiny}"
MODE="${MODE:-train}"
VERSIONS="${VERSIONS:-all}"
STEPS="${STEPS:-10}"
RUN_DIR="${RESULTS_DIR:-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RUN_DIR"
# Profiler markers, deprecation and compile warnings from third-party code go here, not to
# the terminal (benchmarks/stderr_log.py); errors still show, and a failing step still fails.
LOG="$RUN_DIR/third_party.log"
QUIET=("$PY" -m benchmarks.stderr_log "$LOG" --)
echo "[run_all_profilers] results go to $RUN_DIR; third-party warnings and profiler chatter to $LOG"

# 1. The side-by-side speedup table (all modes), gated against version 1. This is the one
#    speed measurement of the run: every version timed round-robin in one loop.
#    A failed gate still writes the table; the profilers run, and the script fails at the end.
BENCH_STATUS=0
# shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
"${QUIET[@]}" "$PY" -m benchmarks run --versions "$VERSIONS" --presets "$PRESET" \
    --steps "$STEPS" --out "$RUN_DIR/bench" ${BENCH_ARGS:-} || BENCH_STATUS=$?
[ -f "$RUN_DIR/bench/results.json" ] || exit "$BENCH_STATUS"

# 2. Every profiler on every version that can run on this machine. Its summary cites step 1's
#    times instead of ranking the versions a second time from separate runs.
"${QUIET[@]}" "$PY" -m benchmarks.profiling --versions "$VERSIONS" --preset "$PRESET" \
    --mode "$MODE" --steps "$STEPS" --out "$RUN_DIR/profile" \
    --harness "$RUN_DIR/bench/results.json" "$@"

# 3. Device-only counts: each v3 kernel alone, and launches per step for v1..v4. Without a
#    GPU both refuse with exit status 2 and say why; that is reported, not hidden.
device_only() {
  local status=0
  "$PY" -m "$@" || status=$?
  if [ "$status" -eq 2 ]; then
    echo "[run_all_profilers] $1 not taken: no GPU (see the message above)" >&2
  elif [ "$status" -ne 0 ]; then
    exit "$status"
  fi
}
if [[ "$VERSIONS" == all || "$VERSIONS" == *v3* ]]; then
  device_only benchmarks.profile_kernels --preset "$PRESET" --out "$RUN_DIR/v3_kernels"
fi
if [[ "$VERSIONS" == all || "$VERSIONS" == *v4* ]]; then
  device_only benchmarks.kernel_count --preset "$PRESET" --json "$RUN_DIR/bench/kernel_count.json"
fi

echo "[run_all_profilers] done: table $RUN_DIR/bench/table.md, summary $RUN_DIR/profile/summary.md"
exit "$BENCH_STATUS"
