"""On a GPU: registers and spills as the driver reports them, after real launches.

``python -m benchmarks.compile_gate --driver [--out DIR]`` runs the same model workloads as
the gate (one decoder layer, the preset's batch, ``min(max_seq_len, seq_cap)`` tokens) on
the GPU with compiled kernels, keeps every ``CompiledKernel`` a launch returns, and writes
``driver.json`` / ``driver.md``: per distinct kernel, ``n_regs`` and ``n_spills`` (the
driver's local memory per thread / 4 on CUDA) and ``metadata.shared``. These are the
numbers to set beside the ahead-of-time compile table for the same triton version.
Exit status 2 without a GPU.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import sys
from pathlib import Path

import torch


@contextlib.contextmanager
def _keep_kernels(sink: dict):
    """Launch as usual, and remember each compiled kernel by (name, constexprs)."""
    from triton.runtime.jit import JITFunction

    original = JITFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        kernel = original(self, *args, grid=grid, warmup=warmup, **kwargs)
        if kernel is not None:
            constexprs = {k: str(v) for k, v in kwargs.items()
                          if k in self.arg_names and self.params[self.arg_names.index(k)]
                          .is_constexpr}
            sink[(self.fn.__qualname__, json.dumps(constexprs, sort_keys=True))] = kernel
        return kernel

    JITFunction.run = run
    try:
        yield
    finally:
        JITFunction.run = original


def _rows(versions, presets, dtypes, modes, seq_cap) -> list[dict]:
    from benchmarks.versions import build_model, load_spec
    from benchmarks.workloads import make_workload

    from .record import DTYPES, preset_config

    device = torch.device("cuda")
    rows = []
    for preset in presets:
        for version in versions:
            for dtype in dtypes:
                config = preset_config(preset).replace(num_layers=1)
                spec = load_spec(version, device)
                torch.manual_seed(0)
                model = build_model(spec, config, None, device)
                if dtype == "bf16w":
                    model = model.to(torch.bfloat16)
                seq = min(config.max_seq_len, seq_cap)
                for mode in modes:
                    if (mode == "train" and dtype == "bf16w") or \
                            (mode == "decode-staged" and not hasattr(model,
                                                                     "set_persistent_decode")):
                        continue
                    if hasattr(model, "set_persistent_decode"):
                        model.set_persistent_decode(False if mode == "decode-staged" else None)
                    kernels: dict = {}
                    try:
                        with _keep_kernels(kernels):
                            # bf16w runs without autocast: pass fp32 so none is entered.
                            amp = torch.float32 if dtype == "bf16w" else DTYPES[dtype]
                            work = make_workload(model, mode.split("-")[0], config.batch_size,
                                                 seq, device, amp, loss_fn=spec.loss_fn)
                            work.step()
                            torch.cuda.synchronize()
                        error = None
                    except Exception as exc:  # recorded per workload, the others carry on
                        error = f"{type(exc).__name__}: {str(exc).splitlines()[-1][:200]}"
                    for (name, constexprs), k in kernels.items():
                        k._init_handles()
                        rows.append({"version": version, "preset": preset, "dtype": dtype,
                                     "mode": mode, "kernel": name, "constexprs": constexprs,
                                     "n_regs": k.n_regs, "n_spills": k.n_spills,
                                     "shared": k.metadata.shared,
                                     "num_warps": k.metadata.num_warps})
                    if error:
                        rows.append({"version": version, "preset": preset, "dtype": dtype,
                                     "mode": mode, "kernel": "-", "error": error})
    return rows


def main(versions, presets, dtypes, modes, seq_cap, out) -> int:
    if not torch.cuda.is_available():
        print("compile_gate --driver: no CUDA/ROCm GPU visible; the driver reports nothing",
              file=sys.stderr)
        return 2
    rows = _rows(versions, presets, dtypes, modes, seq_cap)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out else Path("results") / stamp / "compile"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "generated": stamp, "seq_cap": seq_cap}
    (out / "driver.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# Registers and spills reported by the driver on {meta['device']}", "",
             "| version | preset | dtype | mode | kernel | constexprs | warps | n_regs | "
             "n_spills | shared | error |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "-")) for k in (
            "version", "preset", "dtype", "mode", "kernel", "constexprs", "num_warps",
            "n_regs", "n_spills", "shared", "error")) + " |")
    (out / "driver.md").write_text("\n".join(lines) + "\n")
    errors = [r for r in rows if r.get("error")]
    print(f"compile_gate --driver: {len(rows)} rows, {len(errors)} workloads failed; wrote "
          f"{out / 'driver.md'}")
    return 1 if errors else 0
