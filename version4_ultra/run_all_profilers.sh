#!/usr/bin/env bash
# v4 alone through the top-level run_all_profilers.sh; arguments go to benchmarks.profiling.
exec env VERSIONS=v4 bash "$(dirname "$0")/../run_all_profilers.sh" "$@"
