"""Measured ceilings of the device: copy bandwidth and matmul rate.

Every "fraction of peak" this project reports divides by these measured numbers,
taken on the same device in the same run, never by a datasheet figure.

A ceiling is the BEST of several repeats (the shortest time), not the median: one noisy
measurement below the device's real rate would let a workload "exceed" its ceiling. The
harness measures the matmul ceiling again just before each group of rows it bounds
(``matmul_ceiling``), so both run under the same machine state.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .timing import summarize, time_repeats


@dataclass
class Ceilings:
    device_name: str
    copy_bytes_per_s: float       # read + write bytes of a large device-to-device copy
    matmul_flops_per_s: float     # 2*M*N*K / time of a large square matmul
    matmul_dtype: str
    copy_mib: int
    matmul_size: int
    repeats: int = 0              # each rate is the best of this many timed repeats

    def to_json(self) -> dict:
        return asdict(self)


def _matmul_setup(device: torch.device, matmul_size: int | None):
    # CPU: 2048 (at 1024 the BLAS had not reached its best rate; model GEMMs beat that ceiling)
    gpu = device.type == "cuda"
    size = matmul_size or (8192 if gpu else 2048)
    return size, torch.bfloat16 if gpu else torch.float32


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls (after 3 warm-ups): the least-disturbed run."""
    return summarize(time_repeats(fn, device, warmup=3, repeats=repeats))["min"] / 1e3


def matmul_ceiling(device: torch.device, matmul_size: int | None = None,
                   repeats: int = 10) -> float:
    """Matmul rate in FLOP/s: best of ``repeats`` square matmuls (GPU bf16 8192³, CPU fp32 2048³)."""
    size, dtype = _matmul_setup(device, matmul_size)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size**3 / _best_seconds(lambda: a @ b, device, repeats)


def measure_ceilings(device: torch.device, copy_mib: int | None = None,
                     matmul_size: int | None = None, repeats: int = 10) -> Ceilings:
    """Best-of-``repeats`` copy bandwidth and matmul rate. GPU: bf16 8192³, 1 GiB copy;
    CPU: fp32 2048³, 256 MiB.

    The copy is large enough to overflow every cache, so it measures memory bandwidth.
    """
    from .environment import device_name
    copy_mib = copy_mib or (1024 if device.type == "cuda" else 256)
    size, dtype = _matmul_setup(device, matmul_size)
    src = torch.empty(copy_mib * 2**20 // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    copy_s = _best_seconds(lambda: dst.copy_(src), device, repeats)
    return Ceilings(device_name=device_name(device),
                    copy_bytes_per_s=2 * src.numel() * src.element_size() / copy_s,
                    matmul_flops_per_s=matmul_ceiling(device, size, repeats),
                    matmul_dtype=str(dtype).replace("torch.", ""),
                    copy_mib=copy_mib, matmul_size=size, repeats=repeats)
