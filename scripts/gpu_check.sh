#!/usr/bin/env bash
# The one command for a GPU window: bash scripts/gpu_check.sh
#
# Needs a machine with torch (CUDA or ROCm) and triton already importable; it installs
# nothing and needs no network. Every step runs under its own `timeout`; together they stay
# within 8 minutes. Everything lands in results/gpu-<date-time>/, with status.tsv naming
# each step as ran, failed (rc) or timed out. Without a GPU: one line on stderr, exit 2.
#
# PYTHON picks the interpreter (default: python3).
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

# One interpreter start: 0 a GPU, 3 torch without a GPU, 4 no torch at all.
"$PY" -c "
import sys
try:
    import torch
except ImportError:
    sys.exit(4)
sys.exit(0 if torch.cuda.is_available() else 3)" 2>/dev/null
probe=$?
if [ "$probe" -eq 3 ]; then
    echo "gpu_check: no CUDA/ROCm GPU visible (torch.cuda.is_available() is False)" >&2
    exit 2
elif [ "$probe" -ne 0 ]; then
    echo "gpu_check: cannot import torch with $PY (set PYTHON to the interpreter that has it)" >&2
    exit 2
fi
if ! "$PY" -c "import triton" 2>/dev/null; then
    echo "gpu_check: cannot import triton with $PY; versions 3 and 4 need it" >&2
    exit 2
fi

OUT="results/gpu-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
printf 'step\tstatus\trc\tseconds\tlimit_s\n' > "$OUT/status.tsv"
"$PY" -c "import torch, triton; print(torch.cuda.get_device_name(0), '| torch', torch.__version__, '| triton', triton.__version__)" > "$OUT/device.txt" 2>&1

# step NAME LIMIT_S COMMAND...: run with a timeout, log to NAME.log, one line in status.tsv.
step() {
    local name="$1" limit="$2"
    shift 2
    local start rc status
    start=$(date +%s)
    echo "gpu_check: $name (up to ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="timed out"
    elif [ "$rc" -eq 0 ]; then status="ran"
    else status="failed"; fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$(( $(date +%s) - start ))" "$limit" \
        >> "$OUT/status.tsv"
}

# 1. The gpu-marked tests (JUnit XML for the record).        budget 120 s
step gpu_tests 120 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT/gpu_tests.xml" tests

# 2. Every kernel benchmark there is, v3 and v4 alike.        budget 100 s in all
for bench in benchmarks/kernels/bench_*.py; do
    mod="benchmarks.kernels.$(basename "$bench" .py)"
    step "kernel_$(basename "$bench" .py)" 25 "$PY" -m "$mod" --dtype bf16 --no-compile \
        --json "$OUT/kernel_$(basename "$bench" .py).json"
done

# 3. Kernel launches per forward and per decoded token.       budget 60 s
step kernel_count 60 "$PY" -m benchmarks.kernel_count --preset small --dtype bf16 \
    --json "$OUT/kernel_count.json"

# 4. The side-by-side harness in bf16: tiny, small, tinyllama-1.1b; prefill and decode.
#    Few steps: a first measurement, labelled as such by its step count.  budget 150 s
step harness_bf16 150 "$PY" -m benchmarks run --versions v1,v2,v3,v4 \
    --presets tiny,small,tinyllama-1.1b --modes prefill,decode --dtype bf16 --steps 5 \
    --warmup 2 --seq-len 512 --no-progress --out "$OUT/harness"

# 5. Registers and spills as the driver reports them, next to the compile table.  60 s
step driver_regs 60 "$PY" -m benchmarks.compile_gate --driver \
    --presets tiny,small,tinyllama-1.1b --dtypes bf16,bf16w \
    --modes prefill,decode,decode-staged --out "$OUT/compile"

echo "gpu_check: results in $OUT"
cat "$OUT/status.tsv"
