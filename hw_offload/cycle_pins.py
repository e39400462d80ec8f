"""Pinned cycle counts: reference programs whose RTL counters are committed in cycle_pins.json.

A change to the accelerator's timing shows up as a diff of that file in review (and as a
failing tests/test_rtl_cycles.py until it is regenerated on purpose):

    python -m hw_offload.cycle_pins            # compare the RTL against the pins
    python -m hw_offload.cycle_pins --write    # regenerate cycle_pins.json from the RTL

The programs need no data (timing does not depend on it): each is a few instructions built
with the ISA encoder, covering GEMM shapes around the weight-reuse limit (M vs N and 2N+1),
transposed / activation-SRAM B, every vector op, DMA to every memory, and units overlapping
or held apart by a hazard.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .isa import (COLSCALE_A, COLSCALE_B, GEMM_ACCUMULATE, GEMM_B_FROM_A, GEMM_TRANSPOSE_B,
                  MEM_A, MEM_ACC, MEM_W, OP_GEMM, OP_HALT, OP_LOAD, OP_REQ, OP_RESADD, OP_RMS,
                  OP_ROPE, OP_SMAX, OP_STORE, OP_SWIGLU, Insn, encode_program)

PINS = Path(__file__).resolve().parent / "cycle_pins.json"
COUNTERS = ("cycles", "array_busy", "vector_busy", "dma_busy", "stall", "overlap", "all_busy",
            "instructions", "bytes_in", "bytes_out")


def reference_programs(n: int = 16) -> dict[str, list[Insn]]:
    """name -> instructions (HALT appended by the caller)."""
    g = lambda m, kb, nb, flags=0: Insn(OP_GEMM, flags=flags, rows=m, blocks=kb, aux=nb)  # noqa: E731
    progs = {
        "gemm_m1_k1_n1": [g(1, 1, 1)],
        "gemm_m16_k2_n3": [g(n, 2, 3)],
        "gemm_m17_k3_n2": [g(n + 1, 3, 2)],
        "gemm_m33_k4_n4_acc": [g(2 * n + 1, 4, 4, GEMM_ACCUMULATE)],
        "gemm_m128_k8_n8": [g(128, 8, 8)],
        "gemm_qkT_transposed_from_a": [g(n, 2, 4, GEMM_B_FROM_A | GEMM_TRANSPOSE_B)],
        "req_16x4": [Insn(OP_REQ, rows=16, blocks=4, mult0=1, shift0=0)],
        "rms_16x4": [Insn(OP_RMS, rows=16, blocks=4, mult0=1)],
        "rope_16x2": [Insn(OP_ROPE, rows=16, blocks=2, aux=n, src2=2, mult0=1)],
        "smax_16x2": [Insn(OP_SMAX, rows=16, blocks=2, mult0=1)],
        "swiglu_16x4_colscale": [Insn(OP_SWIGLU, flags=COLSCALE_A | COLSCALE_B, rows=16, blocks=4,
                                      mult0=1, mult1=1, cs0=64, cs1=128)],
        "resadd_16x4": [Insn(OP_RESADD, rows=16, blocks=4, mult0=1, mult1=1, flags=COLSCALE_A)],
        "dma_all_memories": [Insn(OP_LOAD, flags=MEM_A, rows=32), Insn(OP_LOAD, flags=MEM_W, rows=32),
                             Insn(OP_LOAD, flags=MEM_ACC, rows=32), Insn(OP_STORE, flags=MEM_A, rows=32),
                             Insn(OP_STORE, flags=MEM_ACC, rows=32, dram=4096)],
        # overlap (ISA.md "Overlap"): a GEMM and a REQ run under an independent weight LOAD
        # (the REQ reads ACC bank 1: the GEMM's second K block reads its C rows back in bank 0);
        # a GEMM reading the rows a LOAD writes waits for it
        "overlap_load_gemm_req": [Insn(OP_LOAD, flags=MEM_W, rows=64, dst=4096),
                                  g(n, 2, 2).replace(dst=512),
                                  Insn(OP_REQ, rows=n, blocks=2, dst=1024, src0=4096, mult0=1)],
        "hazard_load_then_gemm": [Insn(OP_LOAD, flags=MEM_W, rows=2 * n), g(n, 2, 1)],
        "halt_only": [],
    }
    return {k: v + [Insn(OP_HALT)] for k, v in progs.items()}


def measure(acc) -> dict[str, dict[str, int]]:
    """Run every reference program on ``acc`` -> {name: {counter: value}}."""
    out = {}
    for name, insns in reference_programs(acc.config.n).items():
        acc.write_program(encode_program(insns))
        c = acc.run(10_000_000)
        out[name] = {k: getattr(c, k) for k in COUNTERS}
    return out


def load_pins() -> dict[str, dict[str, int]]:
    return json.loads(PINS.read_text())["programs"]


def diff(got: dict, want: dict) -> list[str]:
    lines = []
    for name in sorted(set(got) | set(want)):
        for k in COUNTERS:
            a, b = got.get(name, {}).get(k), want.get(name, {}).get(k)
            if a != b:
                lines.append(f"{name}.{k}: measured {a}, pinned {b}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="pinned cycle counts of the reference programs")
    p.add_argument("--write", action="store_true", help="regenerate cycle_pins.json from the RTL")
    a = p.parse_args(argv)
    from .driver import Accelerator
    with Accelerator("test") as acc:
        got = measure(acc)
        cfg = acc.config
    if a.write:
        PINS.write_text(json.dumps({
            "about": "RTL counters of hw_offload.cycle_pins.reference_programs on the default build "
                     f"(N={cfg.n}); regenerate with `python -m hw_offload.cycle_pins --write`",
            "programs": got}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {PINS}")
        return 0
    lines = diff(got, load_pins())
    print("\n".join(lines) if lines else f"all {len(got)} programs match {PINS.name}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
