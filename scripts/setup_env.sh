# Sourced by run_tests.sh and run_all_profilers.sh: make .venv and install what is missing.
#   usage: source scripts/setup_env.sh "test,hw"   (the pyproject extras this command needs)
# Sets PY to the venv's python. Environment: PYTHON, VENV_DIR, TORCH_SPEC, TRITON_REQUIRED.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
VENV="${VENV_DIR:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV (with system site-packages, to reuse an installed torch)"
    "$BASE_PYTHON" -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
pipq() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "[setup] torch not importable: pip install ${TORCH_SPEC:-torch}"
    pipq "${TORCH_SPEC:-torch}"
fi

if ! "$PY" -c "import triton" >/dev/null 2>&1; then
    echo "[setup] triton not importable: pip install triton"
    if ! pipq triton; then
        if [ "${TRITON_REQUIRED:-0}" = "1" ]; then
            echo "[setup] error: triton could not be installed and this command needs it" >&2
            exit 1
        fi
        echo "[setup] warning: triton could not be installed; the Triton versions will say so"
    fi
fi

# The project itself (editable) and its extras, re-run only when pyproject.toml or the
# extras change: pip's own "already satisfied" pass costs seconds each time.
stamp="$VENV/.tinyllama-setup-$( (cat "$ROOT/pyproject.toml"; echo "$EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    spec="$ROOT"
    [ -n "$EXTRAS" ] && spec="$ROOT[$EXTRAS]"
    echo "[setup] pip install -e '$spec'"
    pipq -e "$spec"
    rm -f "$VENV"/.tinyllama-setup-*
    touch "$stamp"
fi
export PY
