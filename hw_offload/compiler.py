"""Decoder block + quantized weights -> instruction stream + memory image.

Knows the ISA and the quantization scheme, nothing about torch.fx. The result is two
programs: ``load_program`` copies the weight image into the weight SRAM once (weights stay
resident), ``run_program`` takes x (int8, DRAM) through the block to y (int8, DRAM).

Head layout: every head is padded to ``bph`` (blocks per head) array blocks of N lanes. When
head_dim > N the head's dims are permuted so each RoPE pair (i, i + d/2) shares a block;
q and k use the same permutation, so q.k is unchanged. v and o_proj keep natural order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .isa import (COLSCALE_A, COLSCALE_B, GEMM_B_FROM_A, GEMM_TRANSPOSE_B, MEM_A, MEM_W, OP_GEMM,
                  OP_HALT, OP_LOAD, OP_REQ, OP_RESADD, OP_RMS, OP_ROPE, OP_SMAX, OP_STORE,
                  OP_SWIGLU, HwConfig, Insn, colscale_rows, encode_program, rope_rows_per_position)
from .errors import SramFitError
from .quant import QuantizedBlock, column_multipliers, multiplier, pair_multiplier, rope_q14


@dataclass(frozen=True)
class GemmInfo:
    """One GEMM of the block: C[m, n] = A[m, k] B[k, n]; padded sizes are what the array runs."""

    name: str
    m: int
    k: int
    n: int
    useful_macs: int   # with the real (unpadded) head dims


@dataclass
class BlockProgram:
    """Everything needed to run one compiled block on a device (driver or golden)."""

    hw: HwConfig
    seq_len: int
    hidden: int
    weight_image: np.ndarray     # uint8, written at weight_dram
    weight_dram: int
    load_program: np.ndarray     # uint32[n, 8]
    run_program: np.ndarray      # uint32[n, 8]
    x_dram: int
    y_dram: int
    x_scale: float
    y_scale: float
    gemms: list[GemmInfo] = field(default_factory=list)
    run_insns: list[Insn] = field(default_factory=list)

    def pack_x(self, x_q: np.ndarray) -> np.ndarray:
        """x_q: int8 (S, hidden) -> column-block-major bytes for x_dram."""
        return to_blocks(x_q, self.hw.n).reshape(-1)

    def unpack_y(self, raw: np.ndarray) -> np.ndarray:
        """uint8 bytes from y_dram -> int8 (S, hidden)."""
        return from_blocks(raw.view(np.int8), self.seq_len, self.hidden // self.hw.n, self.hw.n)


def to_blocks(mat: np.ndarray, n: int) -> np.ndarray:
    """(rows, cols) -> (cols/n * rows, n): column-block-major SRAM rows."""
    rows, cols = mat.shape
    if cols % n:
        raise ValueError(f"matrix with {cols} columns cannot be split into blocks of {n}")
    return np.ascontiguousarray(mat.reshape(rows, cols // n, n).transpose(1, 0, 2).reshape(-1, n))


def from_blocks(flat: np.ndarray, rows: int, blocks: int, n: int) -> np.ndarray:
    return flat.reshape(blocks, rows, n).transpose(1, 0, 2).reshape(rows, blocks * n)


def weight_rows(b: np.ndarray, n: int) -> np.ndarray:
    """B [K, Nc] -> weight-SRAM rows for GEMM: row nb*K + k holds B[k, nb*n:(nb+1)*n]."""
    return to_blocks(b, n)


class _Alloc:
    """Bump allocator of SRAM rows with a bound and a clear error."""

    def __init__(self, name: str, limit: int, start: int = 0):
        self.name, self.limit, self.next = name, limit, start

    def take(self, rows: int) -> int:
        base = self.next
        self.next += rows
        if self.next > self.limit or base > 0xFFFF:
            raise SramFitError(f"{self.name} SRAM overflow: need {self.next} rows, have {self.limit}; "
                             "use a shorter sequence or a build with a larger SRAM")
        return base


def head_layout(head_dim: int, n: int) -> tuple[int, int, np.ndarray]:
    """-> (bph, rope width, perm): perm[j] = source dim of padded lane j, or -1 for zero."""
    if head_dim <= n:
        perm = np.full(n, -1)
        perm[:head_dim] = np.arange(head_dim)
        return 1, head_dim, perm
    if head_dim % n:
        raise ValueError(f"head_dim {head_dim} > N={n} must be a multiple of N")
    bph, half, q = head_dim // n, head_dim // 2, n // 2
    perm = np.concatenate([np.r_[j * q:(j + 1) * q, half + j * q:half + (j + 1) * q]
                           for j in range(bph)])
    return bph, n, perm


def _pad_heads_out(w: np.ndarray, heads: int, d: int, perm: np.ndarray) -> np.ndarray:
    """[heads*d, in] -> [heads*len(perm), in], rows reordered/padded per head."""
    out = np.zeros((heads * len(perm), w.shape[1]), dtype=w.dtype)
    for h in range(heads):
        for j, src in enumerate(perm):
            if src >= 0:
                out[h * len(perm) + j] = w[h * d + src]
    return out


@dataclass
class WeightLayout:
    """One block's weight-SRAM image: where each matrix, gain, column-scale table and the RoPE
    table start.

    ``image`` (uint8) is copied to W rows ``[base, base + rows)``; ``at`` maps q, k, v, o, gate,
    up, down, g1, g2, table, and cs_<matrix> (the matrix's per-output-channel multipliers,
    in the same padded column order as its GEMM output) to their first W row. The RoPE table covers positions
    ``0 .. positions-1``; each position takes ``bph * table_rows`` rows.
    """

    image: np.ndarray
    base: int
    rows: int
    at: dict[str, int]
    bph: int
    rope_w: int
    table_rows: int
    positions: int


def layout_weights(qb: QuantizedBlock, hw: HwConfig, positions: int, w_base: int = 0) -> WeightLayout:
    """Place one block's weights, gains and RoPE table (positions 0..positions-1) at W row w_base."""
    n, d = hw.n, qb.head_dim
    bph, rope_w, perm = head_layout(d, n)
    v_perm = np.arange(d) if d > n else perm
    H, KV, hb = qb.heads, qb.kv_heads, qb.hidden // n
    w_alloc = _Alloc("weight", hw.w_rows, start=w_base)
    images: list[np.ndarray] = []

    def place(rows: np.ndarray) -> int:
        base = w_alloc.take(rows.shape[0])
        images.append(rows.astype(np.int8))
        return base

    wq = _pad_heads_out(qb.weights["q"], H, d, perm)
    wk = _pad_heads_out(qb.weights["k"], KV, d, perm)
    wv = _pad_heads_out(qb.weights["v"], KV, d, v_perm)
    wo = _pad_heads_out(qb.weights["o"].T, H, d, v_perm).T  # pad input dims
    at = {"q": place(weight_rows(wq.T, n)), "k": place(weight_rows(wk.T, n)),
          "v": place(weight_rows(wv.T, n)), "o": place(weight_rows(wo.T, n)),
          "gate": place(weight_rows(qb.weights["gate"].T, n)),
          "up": place(weight_rows(qb.weights["up"].T, n)),
          "down": place(weight_rows(qb.weights["down"].T, n))}
    # column-scale tables: uint16 per GEMM output column, padded/permuted like the weights
    cm = {name: column_multipliers(qb.channel_scales[name], qb.weight_scales[name])[:, None]
          for name in ("q", "k", "v", "o", "gate", "up", "down")}
    cols = {"q": _pad_heads_out(cm["q"], H, d, perm), "k": _pad_heads_out(cm["k"], KV, d, perm),
            "v": _pad_heads_out(cm["v"], KV, d, v_perm), "o": cm["o"], "gate": cm["gate"],
            "up": cm["up"], "down": cm["down"]}
    for name, col in cols.items():
        table = np.ascontiguousarray(col[:, 0], dtype=np.uint16).view(np.int8)
        at[f"cs_{name}"] = place(table.reshape(colscale_rows(col.shape[0] // n), n))
    at["g1"] = place(qb.gammas["input_norm"].reshape(hb, n))
    at["g2"] = place(qb.gammas["post_norm"].reshape(hb, n))
    # RoPE table: (position, block-in-head) records of rope_w/2 {cos16, sin16} entries.
    cos, sin = rope_q14(np.arange(positions), d, qb.rope_theta)
    tr = rope_rows_per_position(rope_w, n)
    table = np.zeros((positions, bph, tr * n // 2), dtype=np.int16)
    for j in range(bph):
        freq = perm[j * n:j * n + rope_w // 2] if d > n else np.arange(rope_w // 2)
        table[:, j, 0:rope_w:2] = cos[:, freq]
        table[:, j, 1:rope_w:2] = sin[:, freq]
    at["table"] = place(table.view(np.int8).reshape(positions * bph * tr, n))
    image = np.concatenate(images).view(np.uint8).reshape(-1)
    return WeightLayout(image=image, base=w_base, rows=image.size // n, at=at, bph=bph,
                        rope_w=rope_w, table_rows=tr, positions=positions)


def weight_load_program(layout: WeightLayout, weight_dram: int, n: int) -> list[Insn]:
    """LOADs copying the image from DRAM ``weight_dram`` to W rows from ``layout.base`` (no HALT)."""
    load: list[Insn] = []
    for off in range(0, layout.rows, 0xFFFF):
        rows = min(0xFFFF, layout.rows - off)
        load.append(Insn(OP_LOAD, flags=MEM_W, rows=rows, dst=layout.base + off,
                         dram=weight_dram + off * n))
    return load


def colscale(at: dict[str, int], name: str, first_block: int = 0) -> dict[str, int]:
    """Insn fields applying matrix ``name``'s column scales to a vector op's ACC operand,
    starting at output column block ``first_block``. SWIGLU takes ``name="gate_up"``."""
    if name == "gate_up":
        return {"flags": COLSCALE_A | COLSCALE_B, "cs0": at["cs_gate"], "cs1": at["cs_up"]}
    return {"flags": COLSCALE_A, "cs0": at[f"cs_{name}"] + colscale_rows(first_block)}


def rescales(qb: QuantizedBlock) -> dict[str, tuple[int, ...]]:
    """Every integer rescale (multiplier, shift) of the block, from its scales (ISA.md).

    Weight scales here are each matrix's reference (largest channel) scale: the column scale
    has already brought every accumulator column to it.
    """
    sc, ws, gs, d = qb.act_scales, qb.weight_scales, qb.gamma_scales, qb.head_dim
    mq = multiplier
    return {
        # RMSNorm: x_q * g_q * inv / 2^22 is x/rms * g in units of s_gamma
        "rms1": mq(gs["input_norm"] / (sc["xn"] * 2.0 ** 22)),
        "rope_q": mq(sc["xn"] * ws["q"] / (sc["q"] * 2.0 ** 14)),
        "rope_k": mq(sc["xn"] * ws["k"] / (sc["k"] * 2.0 ** 14)),
        "req_v": mq(sc["xn"] * ws["v"] / sc["v"]),
        "scores": mq(sc["q"] * sc["k"] / math.sqrt(d) * 2.0 ** 10),   # scores -> Q10 logits
        "req_o": mq(sc["v"] / 127.0 / sc["attn"]),
        "res1": pair_multiplier(sc["x"] / sc["h1"], sc["attn"] * ws["o"] / sc["h1"]),
        "rms2": mq(gs["post_norm"] / (sc["h1n"] * 2.0 ** 22)),
        "silu_in": mq(sc["h1n"] * ws["gate"] * 2.0 ** 10),
        "swiglu_out": mq(sc["h1n"] * ws["up"] / sc["mid"]),
        "res2": pair_multiplier(sc["h1"] / sc["y"], sc["mid"] * ws["down"] / sc["y"]),
    }


def compile_block(qb: QuantizedBlock, seq_len: int, hw: HwConfig | None = None) -> BlockProgram:
    """Compile one decoder block for prefill of ``seq_len`` tokens at positions 0..seq_len-1."""
    hw = hw or HwConfig()
    n, s, d = hw.n, seq_len, qb.head_dim
    if qb.hidden % n or qb.intermediate % n or s % n:
        raise ValueError(f"hidden ({qb.hidden}), intermediate ({qb.intermediate}) and seq_len ({s}) "
                         f"must be multiples of N={n}")
    wl = layout_weights(qb, hw, s)
    W, bph, rope_w, T = wl.at, wl.bph, wl.rope_w, wl.at["table"]
    G1, G2 = W["g1"], W["g2"]
    weight_image = wl.image
    hb, ib, sb = qb.hidden // n, qb.intermediate // n, s // n
    H, KV, groups = qb.heads, qb.kv_heads, qb.heads // qb.kv_heads
    r = rescales(qb)

    # ---------------- DRAM map ----------------
    weight_dram = 0
    x_dram = -(-weight_image.size // 256) * 256
    y_dram = x_dram + s * qb.hidden
    if y_dram + s * qb.hidden > hw.dram_bytes:
        raise ValueError(f"DRAM too small: need {y_dram + s * qb.hidden} bytes, have {hw.dram_bytes}")

    # ---------------- activation / accumulator SRAM ----------------
    a = _Alloc("activation", hw.a_rows)
    X, XN, QR = a.take(s * hb), a.take(s * hb), a.take(s * H * bph)
    KR, V, P = a.take(s * KV * bph), a.take(s * KV * bph), a.take(s * sb)
    H1, MID = a.take(s * hb), a.take(s * ib)
    O, H1N, Y = QR, XN, X   # reuse: QR is dead once the scores exist, XN and X after RESADD
    c = _Alloc("accumulator", hw.acc_rows)
    QA, KA, VA = c.take(s * H * bph), c.take(s * KV * bph), c.take(s * KV * bph)
    SC, OA, ATT = c.take(s * sb), c.take(s * H * bph), c.take(s * hb)
    c2 = _Alloc("accumulator", hw.acc_rows)   # MLP phase reuses the attention rows
    GA, UA, DA = c2.take(s * ib), c2.take(s * ib), c2.take(s * hb)
    # (the MLP rows overlap ATT; safe because RESADD consumes ATT before the MLP starts)

    prog: list[Insn] = []
    gemms: list[GemmInfo] = []

    def gemm(name, m, kb, nb, dst, src0, src1, flags=0, useful=None):
        prog.append(Insn(OP_GEMM, flags=flags, rows=m, blocks=kb, aux=nb, dst=dst, src0=src0, src1=src1))
        gemms.append(GemmInfo(name, m, kb * n, nb * n, useful if useful is not None else m * kb * n * nb * n))

    prog.append(Insn(OP_LOAD, flags=MEM_A, rows=s * hb, dst=X, dram=x_dram))
    m, sh = r["rms1"]
    prog.append(Insn(OP_RMS, rows=s, blocks=hb, dst=XN, src0=X, src1=G1, mult0=m, shift0=sh))
    real_qkv = lambda kv: s * qb.hidden * kv * d  # noqa: E731
    gemm("q_proj", s, hb, H * bph, QA, XN, W["q"], useful=real_qkv(H))
    gemm("k_proj", s, hb, KV * bph, KA, XN, W["k"], useful=real_qkv(KV))
    gemm("v_proj", s, hb, KV * bph, VA, XN, W["v"], useful=real_qkv(KV))
    m, sh = r["rope_q"]
    prog.append(Insn(OP_ROPE, rows=s, blocks=H * bph, aux=rope_w, dst=QR, src0=QA, src1=T, src2=bph,
                     mult0=m, shift0=sh, **colscale(W, "q")))
    m, sh = r["rope_k"]
    prog.append(Insn(OP_ROPE, rows=s, blocks=KV * bph, aux=rope_w, dst=KR, src0=KA, src1=T, src2=bph,
                     mult0=m, shift0=sh, **colscale(W, "k")))
    m, sh = r["req_v"]
    prog.append(Insn(OP_REQ, rows=s, blocks=KV * bph, dst=V, src0=VA, mult0=m, shift0=sh,
                     **colscale(W, "v")))
    m_sc, sh_sc = r["scores"]
    for h in range(H):
        kvh = h // groups
        gemm(f"qk_h{h}", s, bph, sb, SC, QR + h * bph * s, KR + kvh * bph * s,
             flags=GEMM_B_FROM_A | GEMM_TRANSPOSE_B, useful=s * d * s)
        prog.append(Insn(OP_SMAX, rows=s, blocks=sb, dst=P, src0=SC, src2=0, mult0=m_sc, shift0=sh_sc))
        gemm(f"pv_h{h}", s, sb, bph, OA + h * bph * s, P, V + kvh * bph * s,
             flags=GEMM_B_FROM_A, useful=s * s * d)
    m, sh = r["req_o"]
    prog.append(Insn(OP_REQ, rows=s, blocks=H * bph, dst=O, src0=OA, mult0=m, shift0=sh))
    gemm("o_proj", s, H * bph, hb, ATT, O, W["o"], useful=s * H * d * qb.hidden)
    ma, mb, sh, shb = r["res1"]
    prog.append(Insn(OP_RESADD, rows=s, blocks=hb, dst=H1, src0=X, src1=ATT, mult0=ma, mult1=mb,
                     shift0=sh, shift1=shb, **colscale(W, "o")))
    m, sh = r["rms2"]
    prog.append(Insn(OP_RMS, rows=s, blocks=hb, dst=H1N, src0=H1, src1=G2, mult0=m, shift0=sh))
    gemm("gate_proj", s, hb, ib, GA, H1N, W["gate"])
    gemm("up_proj", s, hb, ib, UA, H1N, W["up"])
    mg, shg = r["silu_in"]
    m, sh = r["swiglu_out"]
    prog.append(Insn(OP_SWIGLU, rows=s, blocks=ib, dst=MID, src0=GA, src1=UA,
                     mult0=mg, shift0=shg, mult1=m, shift1=sh, **colscale(W, "gate_up")))
    gemm("down_proj", s, ib, hb, DA, MID, W["down"])
    ma, mb, sh, shb = r["res2"]
    prog.append(Insn(OP_RESADD, rows=s, blocks=hb, dst=Y, src0=H1, src1=DA, mult0=ma, mult1=mb,
                     shift0=sh, shift1=shb, **colscale(W, "down")))
    prog.append(Insn(OP_STORE, flags=MEM_A, rows=s * hb, src0=Y, dram=y_dram))
    prog.append(Insn(OP_HALT))
    if len(prog) > hw.imem_depth:
        raise ValueError(f"program of {len(prog)} instructions exceeds IMEM depth {hw.imem_depth}")

    load = weight_load_program(wl, weight_dram, n) + [Insn(OP_HALT)]
    return BlockProgram(hw=hw, seq_len=s, hidden=qb.hidden, weight_image=weight_image,
                        weight_dram=weight_dram, load_program=encode_program(load),
                        run_program=encode_program(prog), x_dram=x_dram, y_dram=y_dram,
                        x_scale=qb.act_scales["x"], y_scale=qb.act_scales["y"], gemms=gemms, run_insns=prog)
