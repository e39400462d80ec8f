"""Measured ceilings of the device: copy bandwidth and matmul rate.

Every "fraction of peak" this project reports divides by these measured numbers,
taken on the same device in the same run, never by a datasheet figure.
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

    def to_json(self) -> dict:
        return asdict(self)


def measure_ceilings(device: torch.device, copy_mib: int | None = None,
                     matmul_size: int | None = None, repeats: int = 10) -> Ceilings:
    """Median copy bandwidth and matmul rate. GPU: bf16 8192³, 1 GiB copy; CPU: fp32 2048³, 256 MiB.

    The copy is large enough to overflow every cache, so it measures memory bandwidth.
    """
    from .environment import device_name
    gpu = device.type == "cuda"
    copy_mib = copy_mib or (1024 if gpu else 256)
    # CPU: 2048 (at 1024 the BLAS had not reached its best rate; model GEMMs beat that ceiling)
    matmul_size = matmul_size or (8192 if gpu else 2048)
    dtype = torch.bfloat16 if gpu else torch.float32

    src = torch.empty(copy_mib * 2**20 // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    copy_s = summarize(time_repeats(lambda: dst.copy_(src), device, warmup=3,
                                    repeats=repeats))["median"] / 1e3
    a = torch.randn(matmul_size, matmul_size, device=device, dtype=dtype)
    b = torch.randn(matmul_size, matmul_size, device=device, dtype=dtype)
    mm_s = summarize(time_repeats(lambda: a @ b, device, warmup=3,
                                  repeats=repeats))["median"] / 1e3
    return Ceilings(device_name=device_name(device),
                    copy_bytes_per_s=2 * src.numel() * src.element_size() / copy_s,
                    matmul_flops_per_s=2 * matmul_size**3 / mm_s,
                    matmul_dtype=str(dtype).replace("torch.", ""),
                    copy_mib=copy_mib, matmul_size=matmul_size)
