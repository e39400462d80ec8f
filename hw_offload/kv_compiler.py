"""Decoder block with an on-device KV cache: one program per step of S new tokens at ``past``.

Same layer as compiler.py (knows the ISA, nothing about torch.fx) and the same arithmetic:
the weight image, the rescales and the op sequence are compiler.py's; what changes is where
keys and values live. ``compile_block`` keeps K and V in scratch rows of one prefill; here
they are written into a persistent cache region of the activation SRAM, one region per
(layer, sequence), so a later step (decode) attends to every earlier position.

Cache layout: for kv block ``j`` (kv head ``j // bph``, head block ``j % bph``) position ``p``
lives in A row ``k_base + j * cap + p`` (keys after RoPE) and ``v_base + j * cap + p``.
Blocks are written and read one at a time, so no instruction needs the cache stride:

* ROPE / REQ per kv block write S rows at position ``past`` (the RoPE table row is offset to
  position ``past``, which is how decode gets its start position);
* scores: one transposed GEMM per head block over ``nkb = ceil((past+S)/N)`` key blocks,
  accumulated; SMAX with ``q_off = past`` hides keys after each query (and the stale rows
  past the end of the last block, which therefore contribute exactly 0 to P.V);
* P.V: one GEMM per output head block over the ``nkb`` key blocks.

Integer sums are exact, so a prefill of S tokens gives bit-for-bit the y of compile_block, and
prefill(P) + decode(1) gives bit-for-bit the last row of prefill(P+1) (tests/test_backend.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from .compiler import WeightLayout, _Alloc, colscale
from .isa import (GEMM_ACCUMULATE, GEMM_B_FROM_A, GEMM_TRANSPOSE_B, MEM_A, OP_GEMM, OP_LOAD,
                  OP_REQ, OP_RESADD, OP_RMS, OP_ROPE, OP_SMAX, OP_STORE, OP_SWIGLU, HwConfig, Insn)
from .quant import QuantizedBlock


@dataclass(frozen=True)
class BlockDims:
    """Array-block counts of one decoder block on an N-lane array."""

    n: int
    hb: int       # hidden / N
    ib: int       # intermediate / N
    heads: int
    kv_heads: int
    bph: int      # array blocks per (padded) head

    @staticmethod
    def of(qb: QuantizedBlock, n: int, bph: int) -> "BlockDims":
        if qb.hidden % n or qb.intermediate % n:
            raise ValueError(f"hidden ({qb.hidden}) and intermediate ({qb.intermediate}) must be "
                             f"multiples of N={n}")
        return BlockDims(n, qb.hidden // n, qb.intermediate // n, qb.heads, qb.kv_heads, bph)

    def kv_rows(self, cap: int) -> int:
        """A-SRAM rows of one sequence's K and V cache for one layer (cap = positions, padded)."""
        return 2 * self.kv_heads * self.bph * cap

    def scratch_rows(self, s: int, cap: int) -> tuple[int, int]:
        """(A rows, ACC rows) of scratch that a step of s tokens needs."""
        nkb = cap // self.n
        a = s * (3 * self.hb + self.heads * self.bph + nkb + self.ib)
        attn = s * (2 * self.heads * self.bph + 2 * self.kv_heads * self.bph + nkb + self.hb)
        mlp = s * (2 * self.ib + self.hb)
        return a, max(attn, mlp)


@dataclass(frozen=True)
class KvRegion:
    """One (layer, sequence) KV cache in the activation SRAM."""

    k_base: int
    v_base: int
    cap: int      # positions, a multiple of N


def step_program(qb: QuantizedBlock, wl: WeightLayout, rs: dict, hw: HwConfig, kv: KvRegion,
                 s: int, past: int, scratch_a: int, x_dram: int, y_dram: int) -> list[Insn]:
    """Instructions (no HALT) taking x (int8, S x hidden at x_dram) through the block at positions
    past..past+S-1, appending K and V to ``kv`` and storing y (int8, S x hidden) at y_dram.

    Scratch: A rows from ``scratch_a`` up, ACC rows from 0 (both checked against the build).
    """
    n = hw.n
    dims = BlockDims.of(qb, n, wl.bph)
    hb, ib, H, KV, bph = dims.hb, dims.ib, dims.heads, dims.kv_heads, dims.bph
    groups, nkb_cap = H // KV, kv.cap // n
    if s < 1 or past < 0 or past + s > min(kv.cap, wl.positions):
        raise ValueError(f"step of {s} tokens at position {past} exceeds the cache capacity "
                         f"{min(kv.cap, wl.positions)}")
    nkb = -(-(past + s) // n)
    W, T, tr = wl.at, wl.at["table"], wl.table_rows

    a = _Alloc("activation", hw.a_rows, start=scratch_a)
    X, XN, QR, P = a.take(s * hb), a.take(s * hb), a.take(s * H * bph), a.take(s * nkb_cap)
    H1, MID = a.take(s * hb), a.take(s * ib)
    O, H1N, Y = QR, XN, X   # reuse as in compile_block: dead by the time they are rewritten
    c = _Alloc("accumulator", hw.acc_rows)
    QA, KA, VA = c.take(s * H * bph), c.take(s * KV * bph), c.take(s * KV * bph)
    SC, OA, ATT = c.take(s * nkb_cap), c.take(s * H * bph), c.take(s * hb)
    c2 = _Alloc("accumulator", hw.acc_rows)   # MLP phase reuses the attention rows
    GA, UA, DA = c2.take(s * ib), c2.take(s * ib), c2.take(s * hb)

    p: list[Insn] = [Insn(OP_LOAD, flags=MEM_A, rows=s * hb, dst=X, dram=x_dram)]
    m, sh = rs["rms1"]
    p.append(Insn(OP_RMS, rows=s, blocks=hb, dst=XN, src0=X, src1=W["g1"], mult0=m, shift0=sh))
    for name, dst, nb in (("q", QA, H * bph), ("k", KA, KV * bph), ("v", VA, KV * bph)):
        p.append(Insn(OP_GEMM, rows=s, blocks=hb, aux=nb, dst=dst, src0=XN, src1=W[name]))
    m, sh = rs["rope_q"]
    p.append(Insn(OP_ROPE, rows=s, blocks=H * bph, aux=wl.rope_w, dst=QR, src0=QA,
                  src1=T + past * bph * tr, src2=bph, mult0=m, shift0=sh, **colscale(W, "q")))
    mk, shk = rs["rope_k"]
    mv, shv = rs["req_v"]
    for j in range(KV * bph):
        # blocks=1 means block-in-head 0 for ROPE, so point the table at this block's records
        p.append(Insn(OP_ROPE, rows=s, blocks=1, aux=wl.rope_w, dst=kv.k_base + j * kv.cap + past,
                      src0=KA + j * s, src1=T + (past * bph + j % bph) * tr, src2=bph,
                      mult0=mk, shift0=shk, **colscale(W, "k", j)))
        p.append(Insn(OP_REQ, rows=s, blocks=1, dst=kv.v_base + j * kv.cap + past,
                      src0=VA + j * s, mult0=mv, shift0=shv, **colscale(W, "v", j)))
    m_sc, sh_sc = rs["scores"]
    for h in range(H):
        g = h // groups
        for b in range(bph):
            p.append(Insn(OP_GEMM, flags=GEMM_B_FROM_A | GEMM_TRANSPOSE_B | (GEMM_ACCUMULATE if b else 0),
                          rows=s, blocks=1, aux=nkb, dst=SC, src0=QR + (h * bph + b) * s,
                          src1=kv.k_base + (g * bph + b) * kv.cap))
        p.append(Insn(OP_SMAX, rows=s, blocks=nkb, dst=P, src0=SC, src2=past, mult0=m_sc, shift0=sh_sc))
        for b in range(bph):
            p.append(Insn(OP_GEMM, flags=GEMM_B_FROM_A, rows=s, blocks=nkb, aux=1,
                          dst=OA + (h * bph + b) * s, src0=P, src1=kv.v_base + (g * bph + b) * kv.cap))
    m, sh = rs["req_o"]
    p.append(Insn(OP_REQ, rows=s, blocks=H * bph, dst=O, src0=OA, mult0=m, shift0=sh))
    p.append(Insn(OP_GEMM, rows=s, blocks=H * bph, aux=hb, dst=ATT, src0=O, src1=W["o"]))
    ma, mb, sh, shb = rs["res1"]
    p.append(Insn(OP_RESADD, rows=s, blocks=hb, dst=H1, src0=X, src1=ATT, mult0=ma, mult1=mb,
                  shift0=sh, shift1=shb, **colscale(W, "o")))
    m, sh = rs["rms2"]
    p.append(Insn(OP_RMS, rows=s, blocks=hb, dst=H1N, src0=H1, src1=W["g2"], mult0=m, shift0=sh))
    p.append(Insn(OP_GEMM, rows=s, blocks=hb, aux=ib, dst=GA, src0=H1N, src1=W["gate"]))
    p.append(Insn(OP_GEMM, rows=s, blocks=hb, aux=ib, dst=UA, src0=H1N, src1=W["up"]))
    (mg, shg), (m, sh) = rs["silu_in"], rs["swiglu_out"]
    p.append(Insn(OP_SWIGLU, rows=s, blocks=ib, dst=MID, src0=GA, src1=UA, mult0=mg, shift0=shg,
                  mult1=m, shift1=sh, **colscale(W, "gate_up")))
    p.append(Insn(OP_GEMM, rows=s, blocks=ib, aux=hb, dst=DA, src0=MID, src1=W["down"]))
    ma, mb, sh, shb = rs["res2"]
    p.append(Insn(OP_RESADD, rows=s, blocks=hb, dst=Y, src0=H1, src1=DA, mult0=ma, mult1=mb,
                  shift0=sh, shift1=shb, **colscale(W, "down")))
    p.append(Insn(OP_STORE, flags=MEM_A, rows=s * hb, src0=Y, dram=y_dram))
    return p
