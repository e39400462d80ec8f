"""Kernel launches per forward step and per decoded token, v1..v4, counted on the device.

``python -m benchmarks.kernel_count --preset small --versions v1,v2,v3,v4 [--json OUT]``

Each version's model is built by the shared harness (``benchmarks``), then two steps are
profiled with ``benchmarks.counters.count_step`` (the PyTorch profiler's CUDA activity):

* forward: one forward pass over a (batch, seq) prompt into an empty KV cache (prefill);
* decode: one new token per sequence after a (seq - 1)-token prefill.

Printed with the reduction against v1 (the issue's goal is >= 90%). Nothing is estimated.

Without a GPU there is no device kernel to count: the script says so and exits with status
2. With ``--triton-calls`` it then counts, labelled as such, what version 3 and 4 would
launch, in the interpreter: the Triton calls they record in ``runtime.CALLS``, and the torch
operators that run outside them and would each launch a kernel
(``benchmarks.torch_op_launches``: views, bare allocations and ``item()`` left out). Their
sum per step is ``launches``. That shows the design (per layer forward, measured on tiny: v3
5 Triton calls + 11 torch ops (4 GEMMs, 4 clones, 2 KV-cache copies, 1 residual add); v4 5
fused calls + its 2 KV-cache copies), not a device count. That
run says up front that it is the interpreter, shows a bar per (version, stage) on stderr with
the time left estimated from each version's first counted call, and defaults to tiny at
seq 8 (3 min 10 s measured on 2 shared CPU cores); the per-layer counts do not depend on the
size.
"""
from __future__ import annotations

import json
import sys
import time

import torch

from version1_baseline.config import TinyLlamaConfig, get_preset

from .counters import count_step
from .torch_op_launches import count_torch_ops
from .validation import (ArgumentParser, add_debug_flag, check_workload, check_writable_file,
                         cli_boundary)
from .versions import build_model, load_spec, parse_names
from .workloads import make_workload, resolve_dtype


def _config(preset: str | TinyLlamaConfig) -> TinyLlamaConfig:
    return get_preset(preset) if isinstance(preset, str) else preset


def _steps(name: str, preset: str | TinyLlamaConfig, batch: int, seq: int, device, dtype,
           allow_interpreter):
    """(model, forward_step, decode_step) for version ``name``; ``preset``: a preset's name
    or a config (a shape no preset has, e.g. a test's smaller one)."""
    spec = load_spec(name, device, allow_interpreter=allow_interpreter)
    torch.manual_seed(0)
    model = build_model(spec, _config(preset), None, device, dtype=dtype)
    forward = make_workload(model, "prefill", batch, seq, device, dtype).step
    decode = make_workload(model, "decode", batch, seq, device, dtype).step
    return model, forward, decode


def device_counts(versions, preset, batch, seq, device, dtype) -> dict:
    rows = {}
    for name in versions:
        _, forward, decode = _steps(name, preset, batch, seq, device, dtype, False)
        for step in (forward, decode):  # warm up: compile kernels and autotune outside
            step()
        rows[name] = {"forward": count_step(forward, device)["kernel_launches_per_step"],
                      "decode_token": count_step(decode, device)["kernel_launches_per_step"]}
    base = rows.get("v1")
    for name, row in rows.items():
        for key in ("forward", "decode_token"):
            if base and base[key]:
                row[f"{key}_reduction_vs_v1_pct"] = round(100 * (1 - row[key] / base[key]), 1)
    return rows


def triton_calls(preset: str | TinyLlamaConfig, batch, seq, out=None) -> dict:
    """What v3 and v4 launch per step, counted in the interpreter (not device kernels).

    -> ``{"triton_calls": rows, "torch_ops": rows, "launches": {version: {stage: n}}}``, where
    a row is ``{version: {stage: {name: count}, stage_total: n}}`` for the stages ``forward``
    and ``decode_token``: the Triton calls ``runtime.CALLS`` records, the torch operators
    that would launch a kernel (``benchmarks.torch_op_launches``), and their sum.

    The interpreter runs every kernel program in Python, so each call takes seconds to
    minutes: one tqdm bar on ``out`` (stderr) advances per (version, stage), and each
    version's first counted call's measured time gives its rough time left
    (benchmarks.progress)."""
    from tqdm import tqdm

    from version3_triton import runtime

    from .progress import interpreter_notice

    out = out or sys.stderr
    label = preset if isinstance(preset, str) else "a custom config"
    print(f"kernel_count --triton-calls: v3 and v4 run in the Triton interpreter "
          f"(TRITON_INTERPRET=1, no GPU), hundreds of times slower than on a GPU; "
          f"{label}, batch {batch}, seq {seq}: 2 models to build, then 8 calls (a warm-up "
          "and a counted call of forward and of decode per version). A rough time left "
          "follows each version's first counted call.", file=out, flush=True)
    rows, ops = {}, {}
    # per version: build, then a warm-up and a counted call of forward and of decode
    with tqdm(total=2 * 5, desc="triton calls", unit="stage", file=out) as bar:
        for name in ("v3", "v4"):
            bar.set_postfix_str(f"{name} build (decode prefill included)", refresh=True)
            _, forward, decode = _steps(name, preset, batch, seq, torch.device("cpu"),
                                        torch.float32, True)
            bar.update()
            counts, op_counts = {}, {}
            for key, step in (("forward", forward), ("decode_token", decode)):
                bar.set_postfix_str(f"{name} {key} warm-up", refresh=True)
                step()  # warm-up (the decode workload's own prefill already ran)
                bar.update()
                bar.set_postfix_str(f"{name} {key} counted", refresh=True)
                runtime.CALLS.clear()
                start = time.monotonic()
                op_counts[key] = count_torch_ops(step)
                if key == "forward":
                    # Per version: v4's fused kernels run far slower in the interpreter
                    # than v3's (measured: 2 s vs ~25 s per tiny call on 2 cores), so one
                    # version's call time says nothing about the other's.
                    interpreter_notice(name, time.monotonic() - start, 2,
                                       what=f"{name} decode calls", out=out)
                bar.update()
                counts[key] = dict(runtime.CALLS)
                counts[f"{key}_total"] = sum(runtime.CALLS.values())
                op_counts[f"{key}_total"] = sum(op_counts[key].values())
            rows[name], ops[name] = counts, op_counts
    launches = {name: {key: rows[name][f"{key}_total"] + ops[name][f"{key}_total"]
                       for key in ("forward", "decode_token")} for name in rows}
    return {"triton_calls": rows, "torch_ops": ops, "launches": launches}


def interpreter_record(preset: str | TinyLlamaConfig, batch: int, seq: int,
                       counts: dict) -> dict:
    """The JSON record of ``triton_calls``'s counts (``kernel_count.json`` without a GPU)."""
    config = _config(preset)
    return {"machine": "cpu (TRITON_INTERPRET)",
            "preset": preset if isinstance(preset, str) else None,
            "config": config.to_dict(), "num_layers": config.num_layers,
            "batch_size": batch, "seq_len": seq,
            "counted_by": "in the interpreter, NOT device kernels: triton_calls = "
            "runtime.CALLS (Triton calls); torch_ops = aten operators outside Triton "
            "calls that would launch a kernel (benchmarks.torch_op_launches: views, bare "
            "allocations and ops returning no tensor left out); launches = their sum",
            **counts}


def _layers(preset: str) -> int:
    from version1_baseline.config import get_preset
    return get_preset(preset).num_layers


def _write(path: str, record: dict) -> None:
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {path}")


@cli_boundary
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.kernel_count",
                       description=__doc__.splitlines()[0])
    add_debug_flag(p)
    p.add_argument("--versions", default="v1,v2,v3,v4")
    p.add_argument("--preset", default=None,
                   help="default: small on a GPU; tiny with --triton-calls in the interpreter")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=None,
                   help="prompt length; decode context (default: 128 on a GPU; 8 with "
                        "--triton-calls in the interpreter, where tiny then took 3 min 10 s "
                        "on 2 shared CPU cores: the counts per layer do not depend on it)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--json", default=None, help="write the counts to this path")
    p.add_argument("--triton-calls", action="store_true",
                   help="without a GPU: count in the interpreter what v3 and v4 launch (Triton "
                        "calls and the torch operators that would launch a kernel)")
    args = p.parse_args(argv)
    # The interpreter needs a small default (minutes, not hours); a GPU keeps small/128.
    interpreter = args.triton_calls and not torch.cuda.is_available()
    args.preset = args.preset or ("tiny" if interpreter else "small")
    args.seq_len = args.seq_len or (8 if interpreter else 128)
    versions = parse_names(args.versions)
    check_workload(modes=["prefill", "decode"], batch_size=args.batch_size, seq_len=args.seq_len,
                   max_seq_len=get_preset(args.preset).max_seq_len, flags=True,
                   where=f"preset {args.preset}")
    if args.json:
        check_writable_file(args.json, "--json")
    if not torch.cuda.is_available():
        print("kernel_count: no GPU here, so there are no device kernels to count; "
              "no launch numbers are reported.", file=sys.stderr)
        if args.triton_calls:
            counts = triton_calls(args.preset, args.batch_size, args.seq_len)
            print(f"Launches v3 and v4 make per step, counted under TRITON_INTERPRET "
                  f"({args.preset}, batch {args.batch_size}, seq {args.seq_len}): Triton "
                  "kernel calls (runtime.CALLS), torch operators that would launch a kernel, "
                  "and their sum. These are NOT device kernel counts:")
            print(json.dumps(counts, indent=2, sort_keys=True))
            if args.json:
                _write(args.json, interpreter_record(args.preset, args.batch_size,
                                                     args.seq_len, counts))
        return 2
    device = torch.device("cuda")
    dtype = resolve_dtype(args.dtype, device)
    rows = device_counts(versions, args.preset, args.batch_size, args.seq_len, device, dtype)
    print(f"kernel launches (profiler, {torch.cuda.get_device_name(device)}, {args.preset}, "
          f"batch {args.batch_size}, seq {args.seq_len}, {dtype}):")
    print(f"{'version':8} {'forward':>8} {'vs v1':>8} {'decode/token':>13} {'vs v1':>8}")
    for name, row in rows.items():
        print(f"{name:8} {row['forward']:>8} {row.get('forward_reduction_vs_v1_pct', '-'):>7}% "
              f"{row['decode_token']:>13} {row.get('decode_token_reduction_vs_v1_pct', '-'):>7}%")
    if args.json:
        record = {"machine": torch.cuda.get_device_name(device), "preset": args.preset,
                  "batch_size": args.batch_size, "seq_len": args.seq_len, "dtype": str(dtype),
                  "num_layers": _layers(args.preset),
                  "counted_by": "torch.profiler CUDA activity (memcpy/memset excluded)",
                  "versions": rows}
        _write(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
