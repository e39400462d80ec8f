# Sourced by run_tests.sh and run_all_profilers.sh: make .venv and install what is missing.
#   usage: source scripts/setup_env.sh "test,hw" ["profile"]
#   $1: pyproject extras this command needs; $2: extras it can do without (a failed
#   install of those is a warning, and the step that needs them says it was skipped).
# Sets PY to the venv's python. Environment: PYTHON, VENV_DIR, TORCH_SPEC, TORCH_INDEX_URL,
# TRITON_REQUIRED (scripts/torch_choice.sh says how the torch build is chosen).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
OPTIONAL_EXTRAS="${2:-}"
VENV="${VENV_DIR:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV (with system site-packages, to reuse an installed torch)"
    "$BASE_PYTHON" -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
pipq() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    source "$ROOT/scripts/torch_choice.sh"
    choose_torch
    echo "[setup] torch not importable: installing $TORCH_CHOICE"
    echo "[setup]   (override: TORCH_SPEC=<pip spec>, TORCH_INDEX_URL=<index> or TORCH_INDEX_URL= for PyPI)"
    if ! pipq "${TORCH_PIP_ARGS[@]}"; then
        echo "[setup] error: pip install ${TORCH_PIP_ARGS[*]} failed; if that index is unreachable," \
             "set TORCH_INDEX_URL= (plain PyPI) or TORCH_SPEC" >&2
        exit 1
    fi
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
stamp_for() { echo "$VENV/.tinyllama-setup-$( (cat "$ROOT/pyproject.toml"; echo "$1") | sha256sum | cut -c1-16)"; }
stamp="$(stamp_for "$EXTRAS")"
if [ ! -f "$stamp" ]; then
    spec="$ROOT"
    [ -n "$EXTRAS" ] && spec="$ROOT[$EXTRAS]"
    echo "[setup] pip install -e '$spec'"
    pipq -e "$spec"
    touch "$stamp"
fi
if [ -n "$OPTIONAL_EXTRAS" ]; then
    opt_stamp="$(stamp_for "optional:$OPTIONAL_EXTRAS")"
    if [ ! -f "$opt_stamp" ]; then
        echo "[setup] pip install -e '$ROOT[$OPTIONAL_EXTRAS]' (optional)"
        if pipq -e "$ROOT[$OPTIONAL_EXTRAS]"; then
            touch "$opt_stamp"
        else
            echo "[setup] warning: optional extras '$OPTIONAL_EXTRAS' failed to install; the steps that need them will say they were skipped"
        fi
    fi
fi

# The hw extra's system tool: Yosys, for hw_offload.synth (not a PyPI package).
if [[ ",$EXTRAS,$OPTIONAL_EXTRAS," == *",hw,"* ]]; then
    source "$ROOT/scripts/yosys_setup.sh"
    ensure_yosys
fi
export PY
