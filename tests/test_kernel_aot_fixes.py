"""Focused ahead-of-time compiles (no GPU needed) of the launches issue 12 found broken, at
the failing shapes, through the compile gate's own recorder and compiler
(``benchmarks.compile_gate``): a direct call of the kernel's entry point, not a whole model,
so each fix has a test of seconds. The full sweep is ``test_compile_gate.py``.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton.backends.amd.compiler")
pytest.importorskip("triton.backends.nvidia.compiler")

ROOT = Path(__file__).resolve().parents[1]

# record(call, target names) -> [Launch] of that call, with the family's block sizes;
# compile(launch, target name) -> the gate's Compiled. decode_call(...) -> a decode_layer call.
_PRELUDE = r'''
import torch
from benchmarks.compile_gate.compile_launch import compile_spec
from benchmarks.compile_gate.record import gpu_code_paths, intercept_launches
from benchmarks.compile_gate.targets import TARGETS
from version3_triton import block_sizes
from version4_ultra.kernels import decode_layer as dl

def record(call, target):
    family = "amd" if TARGETS[target].backend == "hip" else "nvidia"
    sink = []
    with gpu_code_paths(), block_sizes.assume_target(family):
        with intercept_launches([TARGETS[target]], sink):
            call()
    return sink

def compile(launch, target):
    return compile_spec(launch.fn, launch.specs[target], TARGETS[target])

def decode_call(dtype, head_dim, persistent, bsz=16):
    hidden, inter = 4 * head_dim, 3 * head_dim
    w = lambda *s: torch.zeros(s, dtype=dtype)
    weights = (torch.ones(hidden), w(hidden, hidden), w(hidden // 2, hidden),
               w(hidden // 2, hidden), w(hidden, hidden), torch.ones(hidden), w(inter, hidden),
               w(inter, hidden), w(hidden, inter))
    cache = torch.zeros(bsz, 2, 32, head_dim, dtype=dtype)
    cos = torch.zeros(1, head_dim)
    return lambda: dl.decode_layer(torch.zeros(bsz, 1, hidden), weights, cache, cache.clone(),
                                   5, cos, cos, 1e-6, persistent=persistent)
'''


def _run(code: str, tmp_path) -> str:
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_CACHE_DIR=str(tmp_path),
               TRITON_DEFAULT_FP_FUSION="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _PRELUDE + code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bf16_decode_layer_compiles_for_sm90_and_gfx942(tmp_path):
    """Was: 'Mismatched type for out between then block (pointer<fp32>) and else block
    (pointer<bf16>)'. Persistent (a cooperative launch) and staged, bf16 weights and cache,
    batch 16: compiles, fits shared memory, no VGPR/register spills, tensor cores."""
    out = _run(r'''
for target in ("sm_90", "gfx942"):
    (persistent,) = record(decode_call(torch.bfloat16, 64, True), target)
    assert persistent.specs[target].options["launch_cooperative_grid"] is True
    staged_qkv = record(decode_call(torch.bfloat16, 64, False), target)[0]
    for name, launch in (("persistent", persistent), ("staged_qkv", staged_qkv)):
        c = compile(launch, target)
        spills = c.spill_bytes if target.startswith("sm") else c.vgpr_spills
        print(target, name, c.status, c.shared <= TARGETS[target].shared_per_block,
              spills == 0, c.tc_instr > 0)
''', tmp_path)
    for target in ("sm_90", "gfx942"):
        for name in ("persistent", "staged_qkv"):
            assert f"{target} {name} ok True True True" in out, out


def test_fp32_kernels_fit_mi300x_lds_at_head_dim_128(tmp_path):
    """Was: fp32 flash forward (80 KB), fp32 decode attention (68 KB) and the fp32 decode
    layer (72 KB) over gfx942's 64 KB. head_dim 80..128 all compile as BLOCK_D=128."""
    out = _run(r'''
from version3_triton.kernels.decode_attention import decode_attention
from version3_triton.kernels.flash_attention import flash_attention
d = 128
q, kv = torch.zeros(1, 40, 4, d), torch.zeros(1, 40, 2, d)
calls = {"decode_layer": decode_call(torch.float32, d, True),
         "flash_fwd": lambda: flash_attention(q, kv, kv),
         "decode_attention": lambda: decode_attention(
             torch.zeros(2, 4, d), torch.zeros(2, 2, 40, d), torch.zeros(2, 2, 40, d), 9)}
for name, call in calls.items():
    print(name, compile(record(call, "gfx942")[0], "gfx942").shared)
''', tmp_path)
    shared = dict(line.split() for line in out.strip().splitlines())
    assert set(shared) == {"decode_layer", "flash_fwd", "decode_attention"}, out
    for name, size in shared.items():
        assert int(size) <= 65536, f"{name} needs {size} B of LDS on gfx942 (64 KB)"


def test_kernels_that_spilled_are_spill_free(tmp_path):
    """Was (benchmarks/results/compile before the block_sizes change): local-memory / scratch
    spills at head_dim 128 (fp32 flash forward on sm_90 184 B; bf16 flash backward dK/dV and
    dQ on gfx942 180 / 288 B; fp32 decode attention on sm_80 8 B; the persistent decode
    kernel on sm_90, fp32 408 B and bf16 8 B) and in the fp32 decode kernel at head_dim 32
    on sm_80 (8 B); and at head_dim 64 (the small / medium / tinyllama-1.1b gate run) in
    the NVIDIA flash backward dK/dV kernel (bf16 8 / 16 B on sm_80 / sm_90, fp32 496 B on
    sm_90), compiled here with dQ at the gate's 128 tokens."""
    out = _run(r'''
from version3_triton.kernels.decode_attention import decode_attention
from version3_triton.kernels.flash_attention import flash_attention
d = 128
q, kv = torch.zeros(1, 40, 4, d), torch.zeros(1, 40, 2, d)

def flash_backward(dtype, seq, head_dim):
    q, kv = (torch.zeros(1, seq, h, head_dim, dtype=dtype, requires_grad=True) for h in (4, 2))
    return lambda: flash_attention(q, kv, kv).float().sum().backward()

cases = [("flash_fwd", lambda: flash_attention(q, kv, kv), "sm_90"),
         ("flash_bwd", flash_backward(torch.bfloat16, 40, d), "gfx942"),
         ("decode_attention", lambda: decode_attention(
             torch.zeros(2, 4, d), torch.zeros(2, 2, 40, d), torch.zeros(2, 2, 40, d), 9), "sm_80"),
         ("decode_layer_fp32", decode_call(torch.float32, d, True), "sm_90"),
         ("decode_layer_bf16", decode_call(torch.bfloat16, d, True), "sm_90"),
         ("decode_layer_fp32_d32", decode_call(torch.float32, 32, True), "sm_80")]
cases += [(f"flash_bwd_d64_{name}", flash_backward(dtype, 128, 64), target)
          for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))
          for target in ("sm_80", "sm_90")]
for name, call, target in cases:
    for launch in record(call, target):
        if "delta" in launch.kernel:
            continue  # the backward's small row-sum kernel has no tile to spill
        c = compile(launch, target)
        print(name, launch.short_name, target, c.status, c.spill_bytes, c.tc_instr)
''', tmp_path)
    rows = [line.split() for line in out.strip().splitlines()]
    assert {r[0] for r in rows} == {"flash_fwd", "flash_bwd", "decode_attention",
                                    "decode_layer_fp32", "decode_layer_bf16",
                                    "decode_layer_fp32_d32", "flash_bwd_d64_bf16",
                                    "flash_bwd_d64_fp32"}, out
    for case, target in [("flash_bwd", "gfx942"), ("flash_bwd_d64_bf16", "sm_80"),
                         ("flash_bwd_d64_bf16", "sm_90"), ("flash_bwd_d64_fp32", "sm_80"),
                         ("flash_bwd_d64_fp32", "sm_90")]:
        assert {"flash_attention._bwd_dkdv_kernel", "flash_attention._bwd_dq_kernel"} <= {
            r[1] for r in rows if r[0] == case and r[2] == target}, out
    for name, kernel, target, status, spill, tc_instr in rows:
        assert status == "ok" and spill == "0", f"{name}: {kernel} on {target}: {status}, " \
                                                f"{spill} B spilled"
        # The smaller bf16 tiles still multiply on tensor cores (mma.sync / wgmma / mfma).
        if name in ("flash_bwd", "flash_bwd_d64_bf16"):
            assert int(tc_instr) > 0, f"{name}: {kernel} on {target}: no tensor-core instructions"
