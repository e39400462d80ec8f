"""Per-kernel benchmarks of version 3's and version 4's Triton kernels.

Run ``python -m benchmarks.kernels.bench_<name>``.

Each script times forward and forward+backward with ``triton.testing.do_bench`` (median
over repeats, warm-up, L2 flushed between calls) for the Triton kernel, the eager PyTorch
reference and ``torch.compile`` of that reference, and prints achieved GB/s and TFLOP/s, from
the analytic byte and FLOP counts of ``work.py``, next to two ceilings measured on the same
device in the same run: a large device-to-device copy and a large bf16 matmul. The JSON rows
keep bytes, FLOPs and time, so each row can be placed on a roofline.

Without a GPU the scripts refuse: the Triton kernels would only run in the interpreter,
whose timings mean nothing. They never print an estimate in place of a measurement.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

NO_GPU = "no GPU: Triton kernels run only in the interpreter; refusing to time them"


def require_gpu() -> torch.device:
    """The GPU to benchmark on; exits with status 2 and a clear message when there is none."""
    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        raise SystemExit(2)
    # Importing the package decides compiled or interpreted mode before any kernel exists.
    from version3_triton import runtime
    if runtime.INTERPRET:
        print("TRITON_INTERPRET is set: " + NO_GPU, file=sys.stderr)
        raise SystemExit(2)
    return torch.device("cuda")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    p.add_argument("--json", default=None, help="also write the rows and ceilings here")
    return p


def torch_dtype(name: str) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def bench_ms(fn) -> float:
    """Median milliseconds of ``fn()`` (triton.testing.do_bench flushes L2 between calls)."""
    from triton.testing import do_bench
    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def ceilings(device: torch.device) -> dict:
    """Measured on ``device`` now: copy bandwidth (GB/s) and bf16 matmul rate (TFLOP/s).

    The measurement itself lives in ``benchmarks.ceilings``, shared with the model harness.
    """
    from benchmarks.ceilings import measure_ceilings
    c = measure_ceilings(device)
    return {"copy_GBps": c.copy_bytes_per_s / 1e9, "bf16_matmul_TFLOPs": c.matmul_flops_per_s / 1e12,
            "device_name": c.device_name}


def grad_step(fn, inputs, grads):
    """A closure running forward + backward of ``fn(*inputs)`` against fixed output grads."""
    def step():
        out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.backward(outs, grads)
    return step


def compiled(fn, enabled: bool):
    return torch.compile(fn) if enabled else None


def rates(ms: float, nbytes: int, flops: int) -> dict:
    """A JSON row's numbers: the counted work, the measured time and both rates.

    Both are recorded so that a row can be placed on a roofline (FLOP per byte, FLOP/s).
    """
    return {"ms": ms, "bytes": nbytes, "flops": flops, "flop_per_byte": flops / nbytes,
            "GBps": nbytes / ms * 1e-6, "TFLOPs": flops / ms * 1e-9}


def report(name: str, rows: list[dict], ceil: dict, json_path: str | None) -> None:
    """Print one line per (impl, pass): time, both rates and each as a share of its ceiling."""
    print(f"{name} on {ceil['device_name']}: ceilings copy {ceil['copy_GBps']:.0f} GB/s, "
          f"bf16 matmul {ceil['bf16_matmul_TFLOPs']:.0f} TFLOP/s (measured now)")
    for r in rows:
        print(f"  {r['shape']:<28} {r['impl']:<8} {r['pass']:<8} {r['ms']:8.3f} ms "
              f"{r['GBps']:8.1f} GB/s ({100 * r['GBps'] / ceil['copy_GBps']:5.1f}% of copy) "
              f"{r['TFLOPs']:7.2f} TFLOP/s "
              f"({100 * r['TFLOPs'] / ceil['bf16_matmul_TFLOPs']:5.1f}% of matmul)")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"kernel": name, "ceilings": ceil, "rows": rows,
                       "counts": "bytes and flops: benchmarks/kernels/work.py (analytic, per "
                                 "shape); ms: measured"}, f, indent=1)


def run_impls(impls: dict, shape: str, work, make_fwd, make_step, rows: list) -> None:
    """Time each implementation's forward and forward+backward; append rows.

    ``work`` is the shape's ``benchmarks.kernels.work.Work``: the same counted bytes and
    FLOPs for every implementation, so the rates compare times directly.
    """
    for impl, fn in impls.items():
        if fn is None:
            continue
        rows.append({"shape": shape, "impl": impl, "pass": "fwd",
                     **rates(bench_ms(make_fwd(fn)), work.fwd_bytes, work.fwd_flops)})
        rows.append({"shape": shape, "impl": impl, "pass": "fwd+bwd",
                     **rates(bench_ms(make_step(fn)), work.step_bytes, work.step_flops)})


def run_forward(impls: dict, shape: str, work, call, rows: list) -> None:
    """Time each implementation's forward only (``call(fn)`` runs it once), under no_grad;
    append rows. For inference kernels and for version 4's fused forwards."""
    with torch.no_grad():
        for impl, fn in impls.items():
            if fn is not None:
                rows.append({"shape": shape, "impl": impl, "pass": "fwd",
                             **rates(bench_ms(lambda: call(fn)), work.fwd_bytes, work.fwd_flops)})
