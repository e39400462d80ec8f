"""Compile one recorded launch for one target and read what the compiler produced.

``triton.compile(ASTSource(fn, signature, constexprs, attrs), target=GPUTarget(...))`` runs
the whole pipeline on CPU: the triton wheel bundles ptxas (cubin for sm_80 / sm_90) and
the AMD code generator (hsaco for gfx942). What is read back, all from the compiler:

* ``shared``: the shared memory / LDS bytes triton requests at launch (``metadata.shared``);
* ``regs``: registers per thread (CUDA: ``cuobjdump -res-usage`` REG; AMD: the
  ``.vgpr_count`` of the ``.amdgcn`` metadata, which on gfx942 is already the unified
  total of VGPRs and AGPRs, ``TotalNumVgprs``, at most 512);
* ``spill_bytes``: per-thread local memory (CUDA: STACK + LOCAL of ``cuobjdump``, the
  ``CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES`` the driver reports as ``n_spills * 4``; AMD: the
  scratch size per lane). That is the spill that costs memory traffic. AMD also reports
  ``vgpr_spills`` / ``sgpr_spills``: on gfx942 these go to AGPRs and VGPR lanes (register
  to register) when the scratch size is 0, so they are listed but not a failure;
* ``tc_instr``: tensor-core instructions in the assembly (``wgmma.mma_async`` and
  ``mma.sync`` in PTX, ``v_mfma`` in AMDGCN);
* ``dots`` / ``low_precision_dots``: ``tt.dot`` ops in the Triton IR, and those whose
  operands are bf16 / fp16 (these must become tensor-core instructions).
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass

from .targets import Target, programs_per_sm

_DOT = re.compile(r"tt\.dot\s[^\n]*?:\s*tensor<[^>]*x(\w+)>")


@dataclass
class Compiled:
    status: str                   # "ok" or "error"
    error: str | None = None      # first line of the compiler's message
    shared: int | None = None
    regs: int | None = None
    spill_bytes: int | None = None
    vgpr_spills: int | None = None
    sgpr_spills: int | None = None
    amd_waves_per_simd: int | None = None
    tc_instr: int | None = None
    dots: int | None = None
    low_precision_dots: int | None = None
    programs_per_sm: int | None = None
    compile_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _first_line(exc: BaseException) -> str:
    """The innermost cause's last line: triton's CompilationError wraps the real reason
    (e.g. "Mismatched type for out ...") under excerpts of every calling function."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    return f"{type(exc).__name__}: {lines[-1]}"[:300]


def _cuda_resources(cubin: bytes) -> tuple[int, int]:
    """(registers per thread, local bytes per thread) from ``cuobjdump -res-usage``."""
    from triton import knobs

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([knobs.nvidia.cuobjdump.path, "-res-usage", f.name],
                             capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", out))
    return int(fields["REG"]), int(fields.get("STACK", 0)) + int(fields.get("LOCAL", 0))


def _amd_field(asm: str, name: str) -> int | None:
    m = re.search(rf"\.{name}:\s+(\d+)", asm)
    return int(m.group(1)) if m else None


def compile_spec(fn, spec, target: Target) -> Compiled:
    """Compile ``fn`` with one ``TargetSpec`` for ``target``; errors become status "error"."""
    import triton
    from triton.compiler import ASTSource

    start = time.perf_counter()
    try:
        kernel = triton.compile(ASTSource(fn, spec.signature, spec.constexprs, spec.attrs),
                                target=target.gpu_target(), options=dict(spec.options))
    except Exception as exc:  # a compile failure is the finding, recorded not raised
        return Compiled("error", error=_first_line(exc),
                        compile_s=round(time.perf_counter() - start, 2))
    ttir = kernel.asm.get("ttir", "")
    dot_types = _DOT.findall(ttir)
    result = Compiled("ok", shared=int(kernel.metadata.shared), dots=len(dot_types),
                      low_precision_dots=sum(t in ("bf16", "f16") for t in dot_types))
    if target.backend == "cuda":
        ptx = kernel.asm["ptx"]
        result.regs, result.spill_bytes = _cuda_resources(kernel.asm["cubin"])
        result.tc_instr = len(re.findall(r"\bwgmma\.mma_async\b|\bmma\.sync\b", ptx))
    else:
        asm = kernel.asm["amdgcn"]
        # Not + .agpr_count: on gfx90a / gfx942 .vgpr_count already includes the AGPRs.
        result.regs = _amd_field(asm, "vgpr_count")
        result.vgpr_spills = _amd_field(asm, "vgpr_spill_count")
        result.sgpr_spills = _amd_field(asm, "sgpr_spill_count")
        scratch = re.search(r"; ScratchSize: (\d+)", asm)
        result.spill_bytes = int(scratch.group(1)) if scratch else None
        occupancy = re.search(r"; Occupancy: (\d+)", asm)
        result.amd_waves_per_simd = int(occupancy.group(1)) if occupancy else None
        result.tc_instr = len(re.findall(r"\bv_mfma_", asm))
    result.programs_per_sm = programs_per_sm(
        target, int(spec.options["num_warps"]), result.shared, result.regs,
        result.amd_waves_per_simd)
    result.compile_s = round(time.perf_counter() - start, 2)
    return result


def spills(c: Compiled) -> bool:
    """Whether the compiled kernel keeps values in local memory / scratch."""
    return bool(c.spill_bytes)
