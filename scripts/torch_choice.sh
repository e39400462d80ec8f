# Which torch build scripts/setup_env.sh installs, and why. Sourced; defines choose_torch.
#
# As the official selector (pytorch.org/get-started) does: on a machine with no NVIDIA or AMD
# GPU, the CPU build from https://download.pytorch.org/whl/cpu (a few hundred MB instead of
# several GB of CUDA libraries); with a GPU, the default build.
#   TORCH_SPEC       pip spec to install instead of `torch` (no index URL is then added
#                    unless TORCH_INDEX_URL is set: CI pins TORCH_SPEC=torch==2.13.0 from PyPI)
#   TORCH_INDEX_URL  index to install from; set but empty = plain PyPI (the default build)
#   TORCH_PROBE_PATH, TORCH_PROBE_DEV  where to look for GPU tools and device files
#                    (default: $PATH and /dev; the tests point them at fake folders)
CPU_INDEX_URL="https://download.pytorch.org/whl/cpu"

# Prints "nvidia", "amd" or "none".
detect_gpu() {
    local path="${TORCH_PROBE_PATH:-$PATH}" dev="${TORCH_PROBE_DEV:-/dev}"
    if PATH="$path" command -v nvidia-smi >/dev/null 2>&1 || compgen -G "$dev/nvidia[0-9]*" >/dev/null; then
        echo nvidia
    elif PATH="$path" command -v rocminfo >/dev/null 2>&1 || [ -e "$dev/kfd" ]; then
        echo amd
    else
        echo none
    fi
}

# Sets TORCH_PIP_ARGS (an array for `pip install`) and TORCH_CHOICE (one line: what and why).
choose_torch() {
    local gpu
    gpu="$(detect_gpu)"
    TORCH_PIP_ARGS=("${TORCH_SPEC:-torch}")
    if [ -n "${TORCH_INDEX_URL+set}" ]; then
        if [ -n "$TORCH_INDEX_URL" ]; then
            TORCH_PIP_ARGS+=(--index-url "$TORCH_INDEX_URL")
            TORCH_CHOICE="${TORCH_PIP_ARGS[0]} from $TORCH_INDEX_URL (TORCH_INDEX_URL is set)"
        else
            TORCH_CHOICE="${TORCH_PIP_ARGS[0]} from PyPI (TORCH_INDEX_URL is set and empty)"
        fi
    elif [ -n "${TORCH_SPEC:-}" ]; then
        TORCH_CHOICE="$TORCH_SPEC from PyPI (TORCH_SPEC is set)"
    elif [ "$gpu" = none ]; then
        TORCH_PIP_ARGS+=(--index-url "$CPU_INDEX_URL")
        TORCH_CHOICE="the CPU build of torch from $CPU_INDEX_URL (no NVIDIA or AMD GPU found:"
        TORCH_CHOICE+=" no nvidia-smi, rocminfo, /dev/nvidia* or /dev/kfd)"
    else
        TORCH_CHOICE="the default torch build from PyPI (found an $gpu GPU)"
        if [ "$gpu" = amd ]; then
            TORCH_CHOICE+="; for ROCm set TORCH_INDEX_URL=https://download.pytorch.org/whl/rocm<version>"
        fi
    fi
}
