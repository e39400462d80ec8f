"""Block sizes of every Triton kernel of versions 3 and 4, per GPU target: the one table.

Why per target: the same tile does not fit everywhere. MI300X (gfx942) gives a program
64 KB of shared memory (LDS) where H100/H200 give 227 KB and A100 163 KB, and an fp32
(IEEE, no tensor cores) ``tl.dot`` keeps its operands in registers, so tiles that suit
bf16 on tensor cores spill or overflow in fp32. Each entry below was chosen by compiling the
kernel ahead of time for the target (``triton.compile`` with a ``GPUTarget``; no GPU
needed) and reading shared memory, registers and spills back (``python -m
benchmarks.compile_gate``): a tile that neither spills nor overflows, at head_dim 64 and 128
(the two head_dim buckets: a kernel's ``BLOCK_D`` is head_dim rounded up to a power of two,
so 80 and 96 compile as 128). Where a tile spilled, ``num_warps`` / ``num_stages`` were
changed before the tile was shrunk, since smaller tiles are slower on a GPU; the comments
at such entries say what spilled before. One ``"nvidia"`` entry serves both sm_80 and
sm_90, so it is one that fits both. They are fits, not timings: no GPU was available to
time candidates; ``scripts/gpu_check.sh``'s kernel benchmarks are where a GPU window would
confirm or replace them.

Keys: ``(kernel, family, precision, head_dim bucket)`` with family ``"nvidia"`` (sm_80,
sm_90) or ``"amd"`` (gfx942), precision ``"tc"`` (bf16/fp16 operands: tensor cores) or
``"ieee"`` (fp32 operands), bucket 64 or 128 (``None`` where one entry serves every head_dim
of that kernel, family and precision).
Values: a ``Config`` (named block sizes, ``num_warps``, ``num_stages``).

``choose`` also records what it picked (per kernel, dtype, head_dim) in ``runtime.CONFIGS``, so
``describe()`` (and with it the result JSON's ``extra``) says which config ran.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch

from . import runtime


class Config(NamedTuple):
    blocks: dict        # constexpr name -> size, e.g. {"BLOCK_M": 64, "BLOCK_N": 64}
    num_warps: int = 4
    num_stages: int = 2

    def label(self) -> str:
        sizes = ",".join(f"{k.removeprefix('BLOCK_')}={v}" for k, v in self.blocks.items())
        return f"{sizes},warps={self.num_warps},stages={self.num_stages}"


def _c(num_warps=4, num_stages=2, **blocks) -> Config:
    return Config(blocks, num_warps, num_stages)


# Small tiles in the interpreter: short test inputs still cross several blocks, and the
# numpy interpreter's cost grows with the tile.
INTERPRETER = {
    "flash_fwd": _c(1, BLOCK_M=16, BLOCK_N=16),
    "flash_bwd": _c(1, BLOCK_M=16, BLOCK_N=16),
    "decode_attention": _c(1, BLOCK_N=16),
    "linear_residual": _c(1, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16),
    "norm_gate_up_swiglu": _c(1, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16),
    "norm_qkv_rope": _c(1, BLOCK_M=16, BLOCK_K=16),
    "decode_layer": _c(1, BLOCK_K=16, BLOCK_N=16, BLOCK_T=16),
}

TABLE = {
    # Flash attention forward: (BLOCK_M queries) x (BLOCK_N keys) per step.
    ("flash_fwd", "nvidia", "tc", 64): _c(4, BLOCK_M=128, BLOCK_N=64),
    ("flash_fwd", "nvidia", "tc", 128): _c(4, BLOCK_M=64, BLOCK_N=64),
    ("flash_fwd", "nvidia", "ieee", 64): _c(4, BLOCK_M=32, BLOCK_N=32),
    # 16 queries, unpipelined: 32 x 32 spilled 184 B on sm_90 with 2 stages, and with 1
    # stage still 64 B when the sequence length is not a multiple of 16 (another
    # specialization); 16 x 32 with 1 stage is spill-free at 17, 40 and 128 (about 60
    # registers on sm_80 and sm_90).
    ("flash_fwd", "nvidia", "ieee", 128): _c(8, 1, BLOCK_M=16, BLOCK_N=32),
    ("flash_fwd", "amd", "tc", 64): _c(4, BLOCK_M=64, BLOCK_N=64),
    ("flash_fwd", "amd", "tc", 128): _c(4, BLOCK_M=64, BLOCK_N=32),
    ("flash_fwd", "amd", "ieee", 64): _c(4, BLOCK_M=32, BLOCK_N=32),
    ("flash_fwd", "amd", "ieee", 128): _c(8, BLOCK_M=32, BLOCK_N=32),
    # Flash attention backward (dK/dV, dQ and delta share one config).
    # NVIDIA head_dim <= 64: 32 queries per step. 64 x 64 spilled in dK/dV (bf16: 8 B on
    # sm_80 and 16 B on sm_90 with 4 warps; with 8 warps or 1 stage still 8-32 B on sm_80
    # at 40 or 128 tokens); 32 x 64 with 4 warps is spill-free at 17, 40 and 128 (dK/dV
    # 180 / 162 registers on sm_80 / sm_90, dQ about 130).
    ("flash_bwd", "nvidia", "tc", 64): _c(4, BLOCK_M=32, BLOCK_N=64),
    ("flash_bwd", "nvidia", "tc", 128): _c(8, BLOCK_M=32, BLOCK_N=64),
    # fp32: 32 x 32 spilled 496 B (584 B at 40 tokens) in dK/dV on sm_90, and 32 B on sm_80
    # at 40; with 8 warps sm_80 still spilled 16 B, with 1 stage sm_90 296 B. 16 x 32 with
    # 3 stages is spill-free
    # at head_dim 32 and 64, 17 / 40 / 128 tokens (with 2 stages sm_80 spilled 8 B at
    # head_dim 32, 128 tokens).
    ("flash_bwd", "nvidia", "ieee", 64): _c(4, 3, BLOCK_M=16, BLOCK_N=32),
    ("flash_bwd", "nvidia", "ieee", 128): _c(8, BLOCK_M=16, BLOCK_N=32),
    ("flash_bwd", "amd", "tc", 64): _c(4, BLOCK_M=64, BLOCK_N=64),
    ("flash_bwd", "amd", "ieee", 64): _c(4, BLOCK_M=32, BLOCK_N=32),
    # 4 waves at head_dim 128 on gfx942: one wave per SIMD may use all 512 VGPRs + AGPRs,
    # which these tiles need (with 8 waves each has 256, and dK/dV and dQ spill to
    # scratch: bf16 180 / 288 B at 32x64; fp32 dQ 8 B even at 16x32).
    ("flash_bwd", "amd", "tc", 128): _c(4, BLOCK_M=32, BLOCK_N=64),
    ("flash_bwd", "amd", "ieee", 128): _c(4, BLOCK_M=32, BLOCK_N=32),
    # Decode attention: BLOCK_N cached keys per step for all query heads of a kv head.
    ("decode_attention", "nvidia", "tc", None): _c(4, BLOCK_N=64),
    # fp32 on NVIDIA: 8 warps (with 4, sm_80 spills 8 B at head_dim 128). The grid is one
    # program per (sequence, kv head), at decode batch sizes often fewer than the SMs, so
    # more warps per program is the parallelism there is to add.
    ("decode_attention", "nvidia", "ieee", None): _c(8, BLOCK_N=32),
    ("decode_attention", "amd", "tc", None): _c(4, BLOCK_N=64),
    ("decode_attention", "amd", "ieee", None): _c(4, BLOCK_N=32),
    # v4's fused GEMMs: rows x output columns x reduction per step (norm_qkv_rope's
    # columns are half a head, fixed by head_dim; two accumulators in the gate/up kernel).
    ("linear_residual", "nvidia", "tc", None): _c(4, BLOCK_M=64, BLOCK_N=64, BLOCK_K=64),
    ("linear_residual", "nvidia", "ieee", None): _c(4, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32),
    ("linear_residual", "amd", "tc", None): _c(4, BLOCK_M=64, BLOCK_N=64, BLOCK_K=64),
    ("linear_residual", "amd", "ieee", None): _c(4, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32),
    ("norm_gate_up_swiglu", "nvidia", "tc", None): _c(4, BLOCK_M=64, BLOCK_N=64, BLOCK_K=32),
    ("norm_gate_up_swiglu", "nvidia", "ieee", None): _c(4, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32),
    ("norm_gate_up_swiglu", "amd", "tc", None): _c(4, BLOCK_M=64, BLOCK_N=64, BLOCK_K=32),
    ("norm_gate_up_swiglu", "amd", "ieee", None): _c(4, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32),
    ("norm_qkv_rope", "nvidia", "tc", None): _c(4, BLOCK_M=64, BLOCK_K=64),
    ("norm_qkv_rope", "nvidia", "ieee", None): _c(4, BLOCK_M=32, BLOCK_K=32),
    ("norm_qkv_rope", "amd", "tc", None): _c(4, BLOCK_M=64, BLOCK_K=64),
    ("norm_qkv_rope", "amd", "ieee", None): _c(4, BLOCK_M=32, BLOCK_K=32),
    # v4's decode layer: BLOCK_K reduction per step of the GEMV stages, BLOCK_N output
    # columns per tile (small: more tiles, more SMs busy), BLOCK_T cached keys per step.
    # NVIDIA: 8 warps, because with 4 these tiles spill (bf16 weights: 8 B on sm_90 at
    # head_dim 128; fp32: 8 B on sm_80 at 32, 8 / 16 B on sm_80 / sm_90 at 64, 408 B on
    # sm_90 at 128), and the persistent grid is at most one program per SM, so its warps
    # are all the loads an SM has in flight. fp32 stages per head_dim bucket: 2 spill 8 B
    # on sm_80 at 64 (persistent kernel), 3 spill 8 B on sm_90 at 128 (staged stage 0).
    ("decode_layer", "nvidia", "tc", None): _c(8, BLOCK_K=64, BLOCK_N=16, BLOCK_T=64),
    ("decode_layer", "nvidia", "ieee", 64): _c(8, 3, BLOCK_K=32, BLOCK_N=16, BLOCK_T=32),
    ("decode_layer", "nvidia", "ieee", 128): _c(8, 2, BLOCK_K=32, BLOCK_N=16, BLOCK_T=32),
    ("decode_layer", "amd", "tc", None): _c(4, BLOCK_K=64, BLOCK_N=16, BLOCK_T=64),
    ("decode_layer", "amd", "ieee", None): _c(4, BLOCK_K=32, BLOCK_N=16, BLOCK_T=32),
}

_assumed: str | None = None


@contextlib.contextmanager
def assume_target(family: str):
    """Choose configs for ``family`` ("nvidia" or "amd") instead of the device's, e.g. to
    record launches on a CPU for an ahead-of-time compile of another GPU."""
    global _assumed
    if family not in ("nvidia", "amd"):
        raise ValueError(f"family must be 'nvidia' or 'amd', got {family!r}")
    previous, _assumed = _assumed, family
    try:
        yield
    finally:
        _assumed = previous


def family() -> str:
    """"interpreter", "nvidia" or "amd": which part of the table applies here."""
    if _assumed is not None:
        return _assumed
    if runtime.INTERPRET:
        return "interpreter"
    return "amd" if torch.version.hip else "nvidia"


def choose(kernel: str, dtype: torch.dtype, head_dim: int | None = None) -> Config:
    """The config of ``kernel`` for dot operands of ``dtype`` (fp32: IEEE, else tensor
    cores); ``head_dim`` picks the bucket of the attention kernels. Recorded in
    ``runtime.CONFIGS`` under the kernel, dtype and head_dim."""
    fam = family()
    if fam == "interpreter":
        config = INTERPRETER[kernel]
    else:
        precision = "ieee" if dtype == torch.float32 else "tc"
        bucket = None if (kernel, fam, precision, None) in TABLE else \
            (64 if head_dim <= 64 else 128)
        config = TABLE[(kernel, fam, precision, bucket)]
    key = f"{kernel}:{str(dtype).removeprefix('torch.')}"
    if head_dim is not None:
        key += f":d{head_dim}"
    runtime.CONFIGS[key] = f"{fam}:{config.label()}"
    return config
