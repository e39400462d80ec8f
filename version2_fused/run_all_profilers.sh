#!/usr/bin/env bash
# v2 alone through the top-level run_all_profilers.sh; arguments go to benchmarks.profiling.
exec env VERSIONS=v2 bash "$(dirname "$0")/../run_all_profilers.sh" "$@"
