"""The GPUs the compile gate compiles for, and the per-block / per-SM limits it checks.

Every number here is a published hardware limit (CUDA C Programming Guide, "Technical
Specifications per Compute Capability"; AMD CDNA3 ISA guide / MI300X data sheet), not a
measurement. The SM / CU counts are those of the products named, which is what the
persistent decode kernel's grid has to fit into.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str               # short label used in tables and test ids
    backend: str            # triton GPUTarget backend: "cuda" or "hip"
    arch: object            # 90, 80 or "gfx942"
    warp_size: int
    products: str           # what this target stands for
    shared_per_block: int   # bytes a block may request (opt-in maximum)
    shared_per_sm: int      # bytes per SM / CU
    regs_per_sm: int        # 32-bit registers per SM (CUDA); unused for hip (occupancy is read)
    max_threads_per_sm: int
    max_blocks_per_sm: int
    sms: int                # SMs (CUDA) or CUs (AMD) of the product

    def gpu_target(self):
        from triton.backends.compiler import GPUTarget
        return GPUTarget(self.backend, self.arch, self.warp_size)


TARGETS: dict[str, Target] = {t.name: t for t in [
    # H100 SXM / H200: 227 KB usable per block (228 KB per SM, 1 KB reserved per block).
    Target("sm_90", "cuda", 90, 32, "H100/H200", shared_per_block=232448,
           shared_per_sm=233472, regs_per_sm=65536, max_threads_per_sm=2048,
           max_blocks_per_sm=32, sms=132),
    # A100: 163 KB usable per block (164 KB per SM).
    Target("sm_80", "cuda", 80, 32, "A100", shared_per_block=166912, shared_per_sm=167936,
           regs_per_sm=65536, max_threads_per_sm=2048, max_blocks_per_sm=32, sms=108),
    # MI300X: 64 KB LDS per workgroup and per CU; 4 SIMDs per CU, up to 8 waves each.
    Target("gfx942", "hip", "gfx942", 64, "MI300X", shared_per_block=65536,
           shared_per_sm=65536, regs_per_sm=0, max_threads_per_sm=2048,
           max_blocks_per_sm=32, sms=304),
]}

# CUDA reserves this much shared memory per resident block on sm_80 / sm_90.
CUDA_RESERVED_SHARED_PER_BLOCK = 1024
# CUDA allocates registers per warp in units of 256.
CUDA_REG_ALLOC_UNIT = 256
AMD_SIMDS_PER_CU = 4


def parse_targets(text: str) -> list[Target]:
    """``"sm_90,gfx942"`` or ``"all"`` -> targets; ValueError names the valid ones."""
    names = list(TARGETS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise ValueError(f"unknown target(s) {unknown or text!r}; choose from {list(TARGETS)} "
                         "or 'all'")
    return [TARGETS[n] for n in names]


def programs_per_sm(target: Target, num_warps: int, shared: int, regs: int | None,
                    amd_waves_per_simd: int | None) -> int | None:
    """How many programs (blocks / workgroups) of one kernel fit on one SM / CU at once.

    CUDA: the occupancy-calculator bound from the compiled registers per thread, the
    shared memory the kernel requests, threads and blocks per SM. AMD: the compiler's own
    waves-per-SIMD occupancy (it accounts for VGPRs, AGPRs and SGPRs) times 4 SIMDs, split
    into workgroups of ``num_warps`` waves, and the LDS bound. None when the inputs are
    unknown (the kernel did not compile).
    """
    threads = num_warps * target.warp_size
    bounds = [target.max_blocks_per_sm, target.max_threads_per_sm // threads]
    if target.backend == "cuda":
        if regs is None:
            return None
        per_warp = -(-regs * target.warp_size // CUDA_REG_ALLOC_UNIT) * CUDA_REG_ALLOC_UNIT
        bounds.append(target.regs_per_sm // (per_warp * num_warps) if per_warp else bounds[0])
        bounds.append(target.shared_per_sm // (shared + CUDA_RESERVED_SHARED_PER_BLOCK))
    else:
        if amd_waves_per_simd is None:
            return None
        bounds.append(amd_waves_per_simd * AMD_SIMDS_PER_CU // num_warps)
        if shared:
            bounds.append(target.shared_per_sm // shared)
    return max(0, min(bounds))
