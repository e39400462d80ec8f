#!/usr/bin/env bash
# The test command (CI's .ci/run calls this). Sets up .venv, then runs pytest.
# Extra arguments go to pytest, e.g.  bash run_tests.sh -m "not rtl" -x
set -euo pipefail
cd "$(dirname "$0")"
export TRITON_REQUIRED=1
source scripts/setup_env.sh "test,hw" "profile"
exec "$PY" -m pytest "$@"
