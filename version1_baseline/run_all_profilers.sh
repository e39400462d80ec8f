#!/usr/bin/env bash
# v1 alone through the top-level run_all_profilers.sh; arguments go to benchmarks.profiling.
exec env VERSIONS=v1 bash "$(dirname "$0")/../run_all_profilers.sh" "$@"
