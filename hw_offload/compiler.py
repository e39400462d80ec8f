"""Decoder block + quantized weights -> weight image + instruction stream. The one compiler.

Knows the ISA and the quantization scheme, nothing about torch.fx (and does not import torch).
Two products per block:

* ``layout_weights`` + ``weight_load_program``: the weight image (matrices, gains, column-scale
  tables, RoPE table) and the LOADs that copy it into the weight SRAM once, when resident;
  streamed, the step program carries those LOADs itself (``stream_weight_loads``);
* ``block_program``: the block for S new tokens at positions past..past+S-1 (prefill: past 0;
  decode: S=1 after a prefill), K and V appended to an on-device cache region. Prefill and
  decode run this same program generator; it also runs the same step for several sequences
  at once (a batch), sharing every weight tile between their rows.

Head layout: every head is padded to ``bph`` (blocks per head) array blocks of N lanes. When
head_dim > N the head's dims are permuted so each RoPE pair (i, i + d/2) shares a block;
q and k use the same permutation, so q.k is unchanged. v and o_proj keep natural order.

Cache layout: for kv block ``j`` (kv head ``j // bph``, head block ``j % bph``) position ``p``
lives in A row ``k_base + j * cap + p`` (keys after RoPE) and ``v_base + j * cap + p``.
Blocks are written and read one at a time, so no instruction needs the cache stride:

* ROPE / REQ per kv block write S rows at position ``past`` (the RoPE table row is offset to
  position ``past``, which is how decode gets its start position);
* attention runs per *query group* (``query_groups``): a run of query rows that ends at a
  key-block boundary and sees key blocks ``0 .. nkb-1``, ``nkb = ceil(position of its last
  row + 1, N)``. Key blocks after that are fully masked for every row of the group, so they are
  neither computed (scores GEMM), normalised (SMAX) nor multiplied (P.V): causal tile skipping.
  Per group and head: one transposed scores GEMM per head block over the group's ``nkb`` key
  blocks, accumulated; SMAX with ``q_off`` = the position of the group's first row hides keys
  after each query (and the stale rows past the end of the last block, which therefore
  contribute exactly 0 to P.V); one P.V GEMM per output head block over the same key blocks.
  How many key-block rows of queries a group spans is chosen by the cycle model
  (``scheduled_cycles``: cycle_model.run_cycles, units overlapping) among the groupings whose program fits the instruction memory;
  one group for the whole step is the unskipped program (and decode, S=1, is always one group).

Written for the overlapping controller (ISA.md, "Overlap": in-order issue, DMA, array and
vector unit concurrent, an instruction waits for conflicting ones in flight): the order and
the scratch regions let independent work run together (RoPE behind the GEMMs it would hold up,
attention software-pipelined over two score buffers, the GEMMs after attention in column
ranges interleaved with their vector ops, streamed weight pieces prefetched), and every choice
is priced by the scheduled total (``scheduled_cycles``). Every SRAM is banked with one read
and one write port per bank, so the scratch regions that are read at once go to different
banks (``bank_order``, ``_parity_bases``; sram_plan places the weight tables). Reordering and
placement never change the bits.

Integer sums are exact, so prefill(P) + decode(1) gives bit-for-bit the last row of
prefill(P+1) (tests/test_backend.py).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .cycle_model import run_cycles, schedule
from .footprint import bank_mask, footprint
from .isa import (COLSCALE_A, COLSCALE_B, GEMM_ACCUMULATE, GEMM_B_FROM_A, GEMM_TRANSPOSE_B, MEM_A,
                  MEM_ACC, MEM_W, OP_GEMM, OP_HALT, OP_LOAD, OP_REQ, OP_RESADD, OP_RMS, OP_ROPE,
                  OP_SMAX, OP_STORE, OP_SWIGLU, HwConfig, Insn, colscale_rows,
                  rope_rows_per_position)
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

    ``image`` (uint8) holds ``rows`` W rows in two parts: the matrices (its first ``mat_rows``
    rows), copied to W rows ``[base, base + mat_rows)``, and the tables (column scales, gains,
    RoPE table), copied to ``[t_base, t_base + rows - mat_rows)``; ``t_base`` is
    ``base + mat_rows`` (one contiguous image) unless the plan put the tables elsewhere
    (``with_bases``: in a weight-SRAM bank apart from the matrices, so that a vector op reading
    them never waits for the bank port of a GEMM's weights; ISA.md, "Memories").
    ``at`` maps q, k, v, o, gate, up, down, g1, g2, table, and cs_<matrix> (the matrix's
    per-output-channel multipliers, in the same padded column order as its GEMM output) to their first W row. The RoPE table covers positions
    ``0 .. positions-1``; each position takes ``bph * table_rows`` rows. ``sizes``: rows of
    each of those items.

    Weight matrices named in ``layout_weights(in_a=...)`` live in the activation SRAM instead
    (the GEMMs read them with ``GEMM_B_FROM_A``, same layout): ``a_image`` is copied to A rows
    ``[a_base, a_base + a_rows)`` and ``a_at`` maps those names to their first A row. That is
    how weights that overflow the weight SRAM can still stay resident (sram_plan).
    """

    image: np.ndarray
    base: int
    rows: int
    at: dict[str, int]
    bph: int
    rope_w: int
    table_rows: int
    positions: int
    sizes: dict[str, int] = field(default_factory=dict)
    a_image: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    a_base: int = 0
    a_rows: int = 0
    a_at: dict[str, int] = field(default_factory=dict)
    mat_rows: int = -1      # rows of the matrices part (-1: the whole image, no tables)
    t_base: int = -1        # first W row of the tables part (-1: base + mat_rows)

    def __post_init__(self):
        if self.mat_rows < 0:
            self.mat_rows = self.rows
        if self.t_base < 0:
            self.t_base = self.base + self.mat_rows

    def dram_image(self) -> np.ndarray:
        """What weight_load_program copies from DRAM: the W image, then the A image (uint8)."""
        return np.concatenate([self.image, self.a_image])

    def w_parts(self) -> list[tuple[int, int, int]]:
        """(first W row, first image row, rows) of the W image's parts: the matrices, then the
        tables (one part when they are contiguous)."""
        t_rows = self.rows - self.mat_rows
        if self.t_base == self.base + self.mat_rows:
            return [(self.base, 0, self.rows)]
        return [(self.base, 0, self.mat_rows), (self.t_base, self.mat_rows, t_rows)]

    def image_row(self, w_row: int) -> int:
        """The image row that W row ``w_row`` (inside the image) is loaded from."""
        for lo, first, rows in self.w_parts():
            if lo <= w_row < lo + rows:
                return first + w_row - lo
        raise ValueError(f"W row {w_row} is not part of this weight image")

    def table_names(self) -> list[str]:
        """Names in ``at`` that live in the tables part."""
        return [k for k in self.at if k not in MATRICES]

    def with_bases(self, base: int, t_base: int | None = None) -> "WeightLayout":
        """This layout with its matrices at W row ``base`` and its tables at ``t_base`` (default:
        right after the matrices)."""
        t_base = base + self.mat_rows if t_base is None else t_base
        tables = set(self.table_names())
        at = {k: v - self.t_base + t_base if k in tables else v - self.base + base
              for k, v in self.at.items()}
        return dataclasses.replace(self, base=base, t_base=t_base, at=at)


MATRICES = ("q", "k", "v", "o", "gate", "up", "down")


def layout_weights(qb: QuantizedBlock, hw: HwConfig, positions: int, w_base: int = 0,
                   in_a: tuple[str, ...] = (), a_base: int = 0) -> WeightLayout:
    """Place one block's weights, gains and RoPE table (positions 0..positions-1) at W row w_base;
    the weight matrices named in ``in_a`` (from MATRICES) at A row ``a_base`` instead."""
    if set(in_a) - set(MATRICES):
        raise ValueError(f"in_a names {sorted(set(in_a) - set(MATRICES))}; only the weight matrices "
                         f"{MATRICES} can live in the activation SRAM")
    n, d = hw.n, qb.head_dim
    bph, rope_w, perm = head_layout(d, n)
    v_perm = np.arange(d) if d > n else perm
    H, KV, hb = qb.heads, qb.kv_heads, qb.hidden // n
    w_alloc = _Alloc("weight", hw.w_rows, start=w_base)
    a_alloc = _Alloc("activation", hw.a_rows, start=a_base)
    images: list[np.ndarray] = []
    a_images: list[np.ndarray] = []
    sizes: dict[str, int] = {}
    a_at: dict[str, int] = {}

    def place(rows: np.ndarray, name: str) -> int:
        sizes[name] = rows.shape[0]
        if name in in_a:
            a_at[name] = a_alloc.take(rows.shape[0])
            a_images.append(rows.astype(np.int8))
            return -1
        base = w_alloc.take(rows.shape[0])
        images.append(rows.astype(np.int8))
        return base

    wq = _pad_heads_out(qb.weights["q"], H, d, perm)
    wk = _pad_heads_out(qb.weights["k"], KV, d, perm)
    wv = _pad_heads_out(qb.weights["v"], KV, d, v_perm)
    wo = _pad_heads_out(qb.weights["o"].T, H, d, v_perm).T  # pad input dims
    mats = {"q": wq, "k": wk, "v": wv, "o": wo, "gate": qb.weights["gate"],
            "up": qb.weights["up"], "down": qb.weights["down"]}
    at = {name: place(weight_rows(mats[name].T, n), name) for name in MATRICES}
    at = {name: row for name, row in at.items() if name not in in_a}
    mat_rows = w_alloc.next - w_base
    # column-scale tables: uint16 per GEMM output column, padded/permuted like the weights
    cm = {name: column_multipliers(qb.channel_scales[name], qb.weight_scales[name])[:, None]
          for name in ("q", "k", "v", "o", "gate", "up", "down")}
    cols = {"q": _pad_heads_out(cm["q"], H, d, perm), "k": _pad_heads_out(cm["k"], KV, d, perm),
            "v": _pad_heads_out(cm["v"], KV, d, v_perm), "o": cm["o"], "gate": cm["gate"],
            "up": cm["up"], "down": cm["down"]}
    for name, col in cols.items():
        table = np.ascontiguousarray(col[:, 0], dtype=np.uint16).view(np.int8)
        at[f"cs_{name}"] = place(table.reshape(colscale_rows(col.shape[0] // n), n), f"cs_{name}")
    at["g1"] = place(qb.gammas["input_norm"].reshape(hb, n), "g1")
    at["g2"] = place(qb.gammas["post_norm"].reshape(hb, n), "g2")
    # RoPE table: (position, block-in-head) records of rope_w/2 {cos16, sin16} entries.
    cos, sin = rope_q14(np.arange(positions), d, qb.rope_theta)
    tr = rope_rows_per_position(rope_w, n)
    table = np.zeros((positions, bph, tr * n // 2), dtype=np.int16)
    for j in range(bph):
        freq = perm[j * n:j * n + rope_w // 2] if d > n else np.arange(rope_w // 2)
        table[:, j, 0:rope_w:2] = cos[:, freq]
        table[:, j, 1:rope_w:2] = sin[:, freq]
    at["table"] = place(table.view(np.int8).reshape(positions * bph * tr, n), "table")
    image = np.concatenate(images).view(np.uint8).reshape(-1)
    a_image = (np.concatenate(a_images).view(np.uint8).reshape(-1) if a_images
               else np.zeros(0, dtype=np.uint8))
    return WeightLayout(image=image, base=w_base, rows=image.size // n, at=at, bph=bph,
                        rope_w=rope_w, table_rows=tr, positions=positions, sizes=sizes,
                        a_image=a_image, a_base=a_base, a_rows=a_image.size // n, a_at=a_at,
                        mat_rows=mat_rows)


def weight_load_program(layout: WeightLayout, weight_dram: int, n: int) -> list[Insn]:
    """LOADs copying ``layout.dram_image()`` from DRAM ``weight_dram``: the W image's parts to
    their W rows (``WeightLayout.w_parts``), then any A image to A rows from ``layout.a_base``
    (no HALT)."""
    w_image = [(MEM_W, lo, rows, weight_dram + first * n) for lo, first, rows in layout.w_parts()]
    a_image = [(MEM_A, layout.a_base, layout.a_rows, weight_dram + layout.image.size)]
    return _loads(w_image + a_image, n)


def _loads(pieces: list[tuple[int, int, int, int]], n: int) -> list[Insn]:
    """LOADs of (memory, first SRAM row, rows, DRAM address) pieces, each cut to the 16-bit
    row count of one LOAD."""
    load: list[Insn] = []
    for mem, sram, rows_total, dram in pieces:
        for off in range(0, rows_total, 0xFFFF):
            rows = min(0xFFFF, rows_total - off)
            load.append(Insn(OP_LOAD, flags=mem, rows=rows, dst=sram + off, dram=dram + off * n))
    return load


def weight_segments(layout: WeightLayout) -> list[tuple[int, int]]:
    """The W image cut where a streamed program may load it piece by piece: one (first W row,
    rows) per weight matrix, one for the column-scale tables and gains (small, read by the
    first vector op), one for the RoPE table (read from the first RoPE on). Image order
    (``layout_weights``)."""
    if layout.a_rows:
        raise ValueError("a weight image with matrices in the activation SRAM is resident only; "
                         "it cannot be streamed")
    mats = sorted((layout.at[m], layout.sizes[m]) for m in MATRICES)
    tables, rope = layout.t_base, layout.at["table"]
    end = layout.t_base + layout.rows - layout.mat_rows
    return mats + [(tables, rope - tables), (rope, end - rope)]


def _stream_pieces(program: list[Insn], layout: WeightLayout, hw: HwConfig) -> list[tuple[int, int]]:
    """``weight_segments`` cut further where the program's GEMMs read them in parts (a
    projection split by output columns): -> (first W row, rows), image order."""
    cuts = set()
    for i in program:
        if i.op == OP_GEMM:
            cuts.update(footprint(i, hw).reads.get(MEM_W, ()))
    pieces = []
    for lo, rows in weight_segments(layout):
        edges = sorted({lo, lo + rows} | {c for c in cuts if lo < c < lo + rows})
        pieces.extend((a, b - a) for a, b in zip(edges, edges[1:]))
    return pieces


def stream_weight_loads(program: list[Insn], layout: WeightLayout, weight_dram: int,
                        hw: HwConfig) -> list[Insn]:
    """``program`` with the LOADs of its weight image (``layout.dram_image()`` at DRAM
    ``weight_dram``) placed so that the DMA loads the next piece while the units use this one.

    Pieces (``weight_segments``, cut where GEMMs read a matrix in parts) are loaded in the order
    of their first use. The controller
    issues in order and runs one DMA instruction at a time (ISA.md, "Overlap"), so a LOAD
    fetched while the DMA is still busy holds up every instruction behind it. Each piece's LOAD
    therefore goes right before the first instruction that is expected to dispatch once the
    previous piece has arrived (``cycle_model.schedule``), and never after the piece's own first
    use: the DMA stays busy without blocking the array or the vector unit. A W LOAD shares no
    port with them. A piece nothing reads is loaded first.
    """
    n = hw.n

    def reads(i: Insn, lo: int, hi: int) -> bool:
        r = footprint(i, hw).reads.get(MEM_W, (0, 0))
        return r[0] < hi and lo < r[1]

    pieces = []                     # (index of first use in ``program``, first W row, rows)
    for lo, rows in _stream_pieces(program, layout, hw):
        use = next((k for k, i in enumerate(program) if reads(i, lo, lo + rows)), 0)
        pieces.append((use, lo, rows))
    out = list(program)
    origin = list(range(len(program)))   # out[k] is program[origin[k]] (-1: a weight LOAD)
    after = 0                             # the next LOAD goes after the previous one
    for use, lo, rows in sorted(pieces):
        placed = schedule(out, hw)
        dispatch, retire = placed.dispatch, placed.retire
        cap, free, at = origin.index(use), 0, None
        for k in range(cap + 1):       # free: when the DMA is done with everything before k
            dma = out[k].op in (OP_LOAD, OP_STORE)
            if k >= after and not dma and dispatch[k] >= free:
                at = k
                break
            if dma:
                free = max(free, retire[k])
        at = cap if at is None else at
        loads = _loads([(MEM_W, lo, rows, weight_dram + layout.image_row(lo) * n)], n)
        out[at:at] = loads
        origin[at:at] = [-1] * len(loads)
        after = at + len(loads)
    return out


def colscale(at: dict[str, int], name: str, first_block: int = 0) -> dict[str, int]:
    """Insn fields applying matrix ``name``'s column scales to a vector op's ACC operand,
    starting at output column block ``first_block``. SWIGLU takes ``name="gate_up"``."""
    if name == "gate_up":
        return {"flags": COLSCALE_A | COLSCALE_B, "cs0": at["cs_gate"] + colscale_rows(first_block),
                "cs1": at["cs_up"] + colscale_rows(first_block)}
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


@dataclass(frozen=True)
class QueryGroup:
    """Query rows ``r0 .. r1-1`` of a step (row r is position ``past + r``): together they see
    key blocks ``0 .. nkb-1``; every later key block is masked for all of them."""

    r0: int
    r1: int
    nkb: int


def query_groups(s: int, past: int, n: int, per_group: int) -> list[QueryGroup]:
    """The S query rows of a step at position ``past``, cut where a new key block starts
    (positions that are multiples of N), ``per_group`` such key-block rows per group.

    A ``per_group`` of at least ``ceil(S/N) + 1`` gives one group: the unskipped program.
    """
    if s < 1 or past < 0 or per_group < 1:
        raise ValueError(f"query_groups needs s >= 1, past >= 0, per_group >= 1; got {s}, {past}, "
                         f"{per_group}")
    cuts = [0, *range((-past) % n or n, s, n), s]
    out = []
    for i in range(0, len(cuts) - 1, per_group):
        r0, r1 = cuts[i], cuts[min(i + per_group, len(cuts) - 1)]
        out.append(QueryGroup(r0, r1, -(-(past + r1) // n)))
    return out


def scheduled_cycles(insns: list[Insn], hw: HwConfig) -> int:
    """Cycles of ``insns`` run as one program (HALT appended) by the overlapping controller
    (cycle_model.run_cycles: units run concurrently, so this is less than the sum of the
    instructions' own cycles wherever they overlap)."""
    return run_cycles(list(insns) + [Insn(OP_HALT)], hw).cycles


STREAM_FIRST_PARTS = 4   # GEMMs (and LOADs) the first projection is cut into when streaming
POST_PARTS = (1, 2, 4)   # column ranges block_program may cut the GEMMs after attention into


def _pairs(qg: QueryGroup, start: int) -> int:
    """Causal (query, key <= query) pairs of a query group at step start ``start``: the useful
    MACs per lane of its scores and P.V GEMMs."""
    rows = qg.r1 - qg.r0
    return rows * start + (qg.r0 + 1 + qg.r1) * rows // 2


def bank_order(sizes: dict[str, int], start: int, end: int, bank_rows: int,
               apart: tuple[tuple[str, str, tuple[int, int] | None], ...]) -> dict[str, int]:
    """First rows for regions of ``sizes`` rows in ``[start, end)``, one after the other in some
    order, some moved up to the next bank boundary, so that as few ``apart`` entries as
    possible share a bank (one read port per bank, ISA.md "Memories").

    apart: (region read by a vector op, region read by a GEMM or STORE at the same time, and
    the rows of that GEMM's B operand when it is in the same SRAM, else None: its claim is the
    bounding span of both), most important first. Tried: orders with no gap first, then with
    one gap, two, ...; the first order that parts every entry wins, else the one that parts
    the most important entries (compared in ``apart``'s order; then the lowest end).
    The given order with no gap is the fallback, so this fits wherever that does."""
    return dict(_bank_order(tuple(sizes.items()), start, end, bank_rows, tuple(apart)))


@functools.lru_cache(maxsize=256)
def _bank_order(sizes: tuple[tuple[str, int], ...], start: int, end: int, bank_rows: int,
                apart: tuple) -> tuple[tuple[str, int], ...]:
    rows = dict(sizes)
    best, best_key = None, None
    for gaps in sorted(range(1 << len(sizes)), key=lambda g: bin(g).count("1")):
        for order in itertools.permutations(rows):
            at, base = {}, start
            for k, name in enumerate(order):
                if gaps >> k & 1:
                    base = -(-base // bank_rows) * bank_rows
                at[name], base = (base, base + rows[name]), base + rows[name]
            if base > end:
                continue
            shared = []
            for mine, theirs, extra in apart:
                claim = at[theirs] if extra is None else (min(at[theirs][0], extra[0]),
                                                          max(at[theirs][1], extra[1]))
                shared.append(bool(bank_mask(at[mine], bank_rows) & bank_mask(claim, bank_rows)))
            if best_key is None or (shared, base) < best_key:
                best, best_key = at, (shared, base)
            if not any(shared):
                return tuple((name, at[name][0]) for name, _ in sizes)
    if best is None:       # nothing fits: the given order (its _Alloc reports the overflow)
        at, base = {}, start
        for name, n_rows in sizes:
            at[name], base = (base, base + n_rows), base + n_rows
        best = at
    return tuple((name, best[name][0]) for name, _ in sizes)


def _parity_bases(parts: dict[str, list[int]], limit: int, bank_rows: int) -> dict[str, list[int]]:
    """First rows in ``[0, limit)`` for the parts (rows each, in order) of each named output:
    its even parts one after the other in one region, its odd parts in another, the regions
    apart in banks where there is room (``bank_order``), so that parts j and j+1 never share
    a bank unless nothing else fits."""
    sizes, apart = {}, []
    for name, rows in parts.items():
        sizes[name + "0"], sizes[name + "1"] = sum(rows[0::2]), sum(rows[1::2])
        apart.append((name + "0", name + "1", None))
    at = bank_order(sizes, 0, limit, bank_rows, tuple(apart))
    out = {}
    for name, rows in parts.items():
        offset = [0, 0]
        out[name] = []
        for j, n_rows in enumerate(rows):
            out[name].append(at[name + str(j % 2)] + offset[j % 2])
            offset[j % 2] += n_rows
    return out


def _spare(alloc: _Alloc, rows: int, fallback: int) -> int:
    """``rows`` more rows from ``alloc`` if it has them, else ``fallback`` (the region to share)."""
    if alloc.next + rows > alloc.limit:
        return fallback
    return alloc.take(rows)


def block_program(qb: QuantizedBlock, wl: WeightLayout, rs: dict, hw: HwConfig,
                  kv: KvRegion | list[KvRegion], s: int, past: int | list[int], scratch_a: int,
                  x_dram: int, y_dram: int,
                  gemms: list[GemmInfo] | None = None, per_group: int | None = None,
                  a_end: int | None = None, weights_dram: int | None = None) -> list[Insn]:
    """Instructions (no HALT) taking x (int8, S x hidden at x_dram) through the block at positions
    past..past+S-1, appending K and V to ``kv`` and storing y (int8, S x hidden) at y_dram.

    wl: the block's weight layout at its W rows; rs: ``rescales(qb)``. Scratch: A rows from
    ``scratch_a`` up to ``a_end`` (default: the end of A; above it the plan may keep weights),
    ACC rows from 0 (both checked against the build). ``gemms``, when given,
    receives one GemmInfo per GEMM instruction, in program order (for utilization reports).
    ``per_group``: key-block rows of queries per attention group (``query_groups``); None lets
    the cycle model choose among the groupings that fit the instruction memory with the HALT.
    Every grouping computes the same bits. Raises SramFitError when no grouping fits.

    Batched step: ``kv`` and ``past`` given as lists (one cache region and start position per
    sequence, B of them) run S tokens of each sequence in one program. x and y are then
    (B*S) x hidden, rows b*S .. b*S+S-1 belonging to sequence b: the weight GEMMs stream all B*S
    rows through each weight tile (the point: decode at batch B loads every tile once, not B
    times); RoPE, the cache append and attention run per sequence. Bit-equal to B runs of one.
    """
    n = hw.n
    dims = BlockDims.of(qb, n, wl.bph)
    hb, ib, H, KV, bph = dims.hb, dims.ib, dims.heads, dims.kv_heads, dims.bph
    seqs = list(zip(kv, past, strict=True)) if isinstance(kv, (list, tuple)) else [(kv, past)]
    if not seqs or len({region.cap for region, _ in seqs}) != 1:
        raise ValueError("a batched step needs at least one sequence, all with the same cache capacity")
    for region, start in seqs:
        if s < 1 or start < 0 or start + s > min(region.cap, wl.positions):
            raise ValueError(f"step of {s} tokens at position {start} exceeds the cache capacity "
                             f"{min(region.cap, wl.positions)}")
    r = len(seqs) * s       # rows of every activation matrix of the step
    groups, nkb_cap = H // KV, seqs[0][0].cap // n
    W, T, tr = wl.at, wl.at["table"], wl.table_rows
    d, d_blk = qb.head_dim, qb.head_dim // bph if qb.head_dim > n else qb.head_dim

    a = _Alloc("activation", hw.a_rows if a_end is None else a_end, start=scratch_a)
    # SC and P hold one query group's scores / probabilities at a time (at most S x nkb_cap).
    # The order of the A scratch regions keeps in different banks what a vector op reads while
    # a GEMM (or STORE) reads the other (ISA.md, "Memories": one read port per bank): RESADD
    # reads X beside o_proj reading O (= QR), H1 beside down_proj reading MID, and the STORE of
    # Y (= X) reads beside the last RESADD reading H1. A GEMM with its weights in A
    # (sram_plan.choose_spill) claims every bank from its activations to those weights.
    spilled = {m: (wl.a_at[m], wl.a_at[m] + wl.sizes[m]) for m in wl.a_at}
    sizes = {"X": r * hb, "XN": r * hb, "QR": r * H * bph, "P": r * nkb_cap, "H1": r * hb,
             "MID": r * ib}
    # the second P buffer (_spare below) keeps its room if it had it with no gap
    spare_p = scratch_a + sum(sizes.values()) + r * nkb_cap <= a.limit
    room = a.limit - (r * nkb_cap if spare_p else 0)
    at = bank_order(sizes, scratch_a, room, hw.bank_rows(MEM_A),
                    (("X", "QR", spilled.get("o")), ("H1", "MID", spilled.get("down")),
                     ("X", "MID", spilled.get("down")), ("X", "H1", None)))
    X, XN, QR, P, H1, MID = (at[k] for k in sizes)
    a.take(max(at[k] + sizes[k] for k in sizes) - scratch_a)    # checks the fit, as one region
    O, H1N, Y = QR, XN, X   # reuse: QR is dead once the scores exist, XN and X after RESADD
    c = _Alloc("accumulator", hw.acc_rows)
    acc_bank = hw.bank_rows(MEM_ACC)
    # the attention phase's ACC regions, apart in banks where they are read at once: ROPE
    # (q, k) and REQ (v) read QA / KA / VA beside the k / v projections and the accumulating
    # scores GEMMs (which read SC), SMAX reads SC beside P.V into OA. ATT's rows (o_proj's
    # output) are reserved after them; post_section may place its parts anywhere in ACC.
    # A second SC (and P) where the SRAMs have room beyond what the plan needs
    # (BlockDims.scratch_rows): the next head's scores GEMM then runs while the vector unit
    # normalises this head's (attention below); without room they alias (same bits, serial).
    acc_sizes = {"QA": r * H * bph, "KA": r * KV * bph, "VA": r * KV * bph, "SC": r * nkb_cap,
                 "OA": r * H * bph, "SC2": r * nkb_cap}
    if sum(acc_sizes.values()) + r * hb > c.limit:
        del acc_sizes["SC2"]
    # most important first (bank_order): an accumulating scores GEMM reads one SC while SMAX
    # reads the other, and while ROPE k / REQ v read KA / VA. Then the pairs that meet only if
    # a GEMM's reads of its old C rows for K blocks after the first claim ACC read ports (they
    # happen, ISA.md "GEMM timing"; footprint.py claims them for GEMM_ACCUMULATE only): ROPE q
    # / k beside the k / v projections, SMAX beside P.V into OA. Free where ACC has room.
    acc_apart = (("SC", "SC2", None), ("KA", "SC", None), ("VA", "SC", None),
                 ("KA", "SC2", None), ("VA", "SC2", None),
                 ("QA", "KA", None), ("QA", "VA", None), ("KA", "VA", None),
                 ("SC", "OA", None), ("SC2", "OA", None))
    acc = bank_order(acc_sizes, 0, c.limit - r * hb, acc_bank,
                     tuple(p for p in acc_apart if p[0] in acc_sizes and p[1] in acc_sizes))
    QA, KA, VA, SC, OA = (acc[k] for k in ("QA", "KA", "VA", "SC", "OA"))
    SCS = [SC, acc.get("SC2", SC)]
    c.take(max(acc[k] + acc_sizes[k] for k in acc_sizes))    # checks the fit, as one region
    c.take(r * hb)                                           # ATT's rows (post_section)
    PS = [P, _spare(a, r * nkb_cap, P)]

    def gemm(out: list, infos: list, name: str, useful: int, flags: int = 0, rows: int = r,
             **f) -> None:
        out.append(Insn(OP_GEMM, flags=flags, rows=rows, **f))
        infos.append(GemmInfo(name, rows, f["blocks"] * n, f["aux"] * n, useful))

    def weight(name: str) -> dict[str, int]:
        """GEMM fields reading weight matrix ``name`` from W, or from A when the plan put it there."""
        if name in wl.a_at:
            return {"flags": GEMM_B_FROM_A, "src1": wl.a_at[name]}
        return {"src1": W[name]}

    # ---- before attention: norm, projections, RoPE, K/V appended to the cache ----
    pre: list[Insn] = [Insn(OP_LOAD, flags=MEM_A, rows=r * hb, dst=X, dram=x_dram)]
    pre_g: list[GemmInfo] = []
    m, sh = rs["rms1"]
    pre.append(Insn(OP_RMS, rows=r, blocks=hb, dst=XN, src0=X, src1=W["g1"], mult0=m, shift0=sh))
    def projection(name: str, dst: int, heads: int, parts: int = 1) -> None:
        """x_norm times matrix ``name`` (a q/k/v projection), as ``parts`` GEMMs over column
        ranges of its output (the same bits: every output column is the same dot product)."""
        aux, total = heads * bph, r * qb.hidden * heads * d
        bounds = [aux * j // parts for j in range(parts + 1)]
        for lo, hi in zip(bounds, bounds[1:]):
            if hi > lo:
                f = weight(name)
                f["src1"] += lo * hb * n          # B rows of output block lo (weight_rows)
                gemm(pre, pre_g, f"{name}_proj", total * hi // aux - total * lo // aux,
                     blocks=hb, aux=hi - lo, dst=dst + lo * r, src0=XN, **f)

    # streamed weights: the first projection in parts, so that the array starts on the first
    # part while the DMA still loads the rest of the matrix (stream_weight_loads)
    projection("q", QA, H, STREAM_FIRST_PARTS if weights_dram is not None else 1)
    projection("k", KA, KV)
    # RoPE of q and k runs on the vector unit while the array computes v (in-order issue:
    # each vector op is placed after the GEMM it would otherwise hold up)
    m, sh = rs["rope_q"]
    if len(seqs) == 1:       # every q block in one instruction (the table row is the position)
        pre.append(Insn(OP_ROPE, rows=s, blocks=H * bph, aux=wl.rope_w, dst=QR, src0=QA,
                        src1=T + seqs[0][1] * bph * tr, src2=bph, mult0=m, shift0=sh, **colscale(W, "q")))
    else:                    # a sequence's rows of one block are contiguous, its blocks are not
        for b, (_, start) in enumerate(seqs):
            for j in range(H * bph):
                pre.append(Insn(OP_ROPE, rows=s, blocks=1, aux=wl.rope_w, dst=QR + j * r + b * s,
                                src0=QA + j * r + b * s, src1=T + (start * bph + j % bph) * tr,
                                src2=bph, mult0=m, shift0=sh, **colscale(W, "q", j)))
    projection("v", VA, KV)
    mk, shk = rs["rope_k"]
    mv, shv = rs["req_v"]
    req_v: list[Insn] = []
    for b, (region, start) in enumerate(seqs):
        for j in range(KV * bph):
            # blocks=1 means block-in-head 0 for ROPE, so point the table at this block's records
            pre.append(Insn(OP_ROPE, rows=s, blocks=1, aux=wl.rope_w,
                            dst=region.k_base + j * region.cap + start, src0=KA + j * r + b * s,
                            src1=T + (start * bph + j % bph) * tr, src2=bph,
                            mult0=mk, shift0=shk, **colscale(W, "k", j)))
            req_v.append(Insn(OP_REQ, rows=s, blocks=1, dst=region.v_base + j * region.cap + start,
                              src0=VA + j * r + b * s, mult0=mv, shift0=shv, **colscale(W, "v", j)))
    pre.extend(req_v)

    # ---- after attention: o_proj, residual, MLP, residual, store ----
    def post_section(parts: int) -> tuple[list[Insn], list[GemmInfo]]:
        """o_proj + residual, gate/up + SwiGLU, down + residual + store, each GEMM cut into
        ``parts`` output-column ranges and each vector op into the same ranges, interleaved
        G(0), G(1), V(0), G(2), V(1), ...: the vector unit works on range j while the array
        computes range j+1 (in program order every range is written before it is read, so
        the bits do not depend on ``parts``). Part j of gate and up sits in one ACC span
        (gate then up), so that SwiGLU(j)'s bounding read range misses the ranges the GEMMs
        are still writing."""
        out: list[Insn] = []
        infos: list[GemmInfo] = []

        def split(total: int) -> list[tuple[int, int]]:
            b = [total * j // parts for j in range(parts + 1)]
            return [(lo, hi) for lo, hi in zip(b, b[1:]) if hi > lo]

        def part_gemm(name: str, matrix: str, useful: int, k_blocks: int, out_blocks: int,
                      lo: int, hi: int, dst: int, src0: int) -> None:
            f = weight(matrix)
            f["src1"] += lo * k_blocks * n             # B rows of output block lo (weight_rows)
            gemm(out, infos, name, useful * hi // out_blocks - useful * lo // out_blocks,
                 blocks=k_blocks, aux=hi - lo, dst=dst, src0=src0, **f)

        # where each column range's ACC output goes: consecutive ranges in different banks
        # (the GEMM of range j+1 reads and writes its rows while the vector op reads range j's),
        # even ranges in one region, odd ones in another (_parity_bases). Every earlier ACC
        # value is dead by then: o_proj waits for REQ o, which read the last of attention's
        # (OA), and the MLP's GEMMs wait for RMS2, which waits for the last RESADD of ATT.
        att = _parity_bases({"att": [r * (hi - lo) for lo, hi in split(hb)]}, c.limit,
                            acc_bank)["att"]
        mlp_at = _parity_bases({"gu": [2 * r * (hi - lo) for lo, hi in split(ib)],
                                "da": [r * (hi - lo) for lo, hi in split(hb)]}, c.limit, acc_bank)
        ATT = {lo: base for (lo, _), base in zip(split(hb), att)}
        GU = {lo: base for (lo, _), base in zip(split(ib), mlp_at["gu"])}
        DA = {lo: base for (lo, _), base in zip(split(hb), mlp_at["da"])}

        def pipelined(ranges, gemms, vector, before_last=()) -> None:
            for j, rng in enumerate(ranges):
                gemms(*rng)
                if j:
                    vector(*ranges[j - 1])
            out.extend(before_last)
            vector(*ranges[-1])

        m, sh = rs["req_o"]
        out.append(Insn(OP_REQ, rows=r, blocks=H * bph, dst=O, src0=OA, mult0=m, shift0=sh))
        ma, mb, sh, shb = rs["res1"]
        pipelined(split(hb),
                  lambda lo, hi: part_gemm("o_proj", "o", r * H * d * qb.hidden, H * bph, hb,
                                           lo, hi, ATT[lo], O),
                  lambda lo, hi: out.append(Insn(
                      OP_RESADD, rows=r, blocks=hi - lo, dst=H1 + lo * r, src0=X + lo * r,
                      src1=ATT[lo], mult0=ma, mult1=mb, shift0=sh, shift1=shb,
                      **colscale(W, "o", lo))))
        m, sh = rs["rms2"]
        out.append(Insn(OP_RMS, rows=r, blocks=hb, dst=H1N, src0=H1, src1=W["g2"], mult0=m,
                        shift0=sh))
        mlp = r * qb.hidden * qb.intermediate
        (mg, shg), (m, sh) = rs["silu_in"], rs["swiglu_out"]

        def gate_up(lo: int, hi: int) -> None:
            part_gemm("gate_proj", "gate", mlp, hb, ib, lo, hi, GU[lo], H1N)
            part_gemm("up_proj", "up", mlp, hb, ib, lo, hi, GU[lo] + (hi - lo) * r, H1N)
        pipelined(split(ib), gate_up,
                  lambda lo, hi: out.append(Insn(
                      OP_SWIGLU, rows=r, blocks=hi - lo, dst=MID + lo * r, src0=GU[lo],
                      src1=GU[lo] + (hi - lo) * r, mult0=mg, shift0=shg, mult1=m, shift1=sh,
                      **colscale(W, "gate_up", lo))))
        ma, mb, sh, shb = rs["res2"]
        ranges = split(hb)
        # the store of all but the last range goes out while the vector unit adds the last
        front = ranges[-1][0]
        pipelined(ranges,
                  lambda lo, hi: part_gemm("down_proj", "down", mlp, ib, hb, lo, hi, DA[lo], MID),
                  lambda lo, hi: out.append(Insn(
                      OP_RESADD, rows=r, blocks=hi - lo, dst=Y + lo * r, src0=H1 + lo * r,
                      src1=DA[lo], mult0=ma, mult1=mb, shift0=sh, shift1=shb,
                      **colscale(W, "down", lo))),
                  [Insn(OP_STORE, flags=MEM_A, rows=r * front, src0=Y, dram=y_dram)] if front else [])
        out.append(Insn(OP_STORE, flags=MEM_A, rows=r * (hb - front), src0=Y + front * r,
                        dram=y_dram + front * r * n))
        return out, infos

    # how finely to cut them is chosen below with the grouping (a part costs each GEMM its
    # fill and drain once more and takes instruction memory; it pays where vector ops are long)
    posts = [post_section(k) for k in POST_PARTS if k <= min(hb, ib)]

    # ---- attention, per head and query group, over the key blocks the group can see ----
    m_sc, sh_sc = rs["scores"]

    def attention(qgroups: list[tuple[int, QueryGroup]], heads, out: list, infos: list) -> None:
        """qgroups: (sequence, query group of that sequence's S rows).

        Software-pipelined over the (head, group) items, item u using SC / P buffer u % 2:
        scores(u), SMAX(u), then scores(u+1) before P.V(u), so that the array computes the next
        item's scores while the vector unit normalises this one's (the controller issues in
        order). In program order every buffer is read before it is written again, so the bits
        do not depend on whether the two buffers are distinct."""
        items = [(h, sq, qg) for h in heads for sq, qg in qgroups]

        def scores(u: int) -> None:
            h, sq, qg = items[u]
            region, start = seqs[sq]
            rows, nkb, row0 = qg.r1 - qg.r0, qg.nkb, sq * s + qg.r0   # row0: of the step's r
            for b in range(bph):
                gemm(out, infos, f"qk_h{h}_b{b}_q{row0}", _pairs(qg, start) * d_blk, rows=rows,
                     flags=GEMM_B_FROM_A | GEMM_TRANSPOSE_B | (GEMM_ACCUMULATE if b else 0),
                     blocks=1, aux=nkb, dst=SCS[u % 2], src0=QR + (h * bph + b) * r + row0,
                     src1=region.k_base + (h // groups * bph + b) * region.cap)
            out.append(Insn(OP_SMAX, rows=rows, blocks=nkb, dst=PS[u % 2], src0=SCS[u % 2],
                            src2=start + qg.r0, mult0=m_sc, shift0=sh_sc))

        def weighted_values(u: int) -> None:
            h, sq, qg = items[u]
            region, start = seqs[sq]
            rows, nkb, row0 = qg.r1 - qg.r0, qg.nkb, sq * s + qg.r0
            for b in range(bph):
                gemm(out, infos, f"pv_h{h}_b{b}_q{row0}", _pairs(qg, start) * d_blk, rows=rows,
                     flags=GEMM_B_FROM_A, blocks=nkb, aux=1,
                     dst=OA + (h * bph + b) * r + row0, src0=PS[u % 2],
                     src1=region.v_base + (h // groups * bph + b) * region.cap)

        for u in range(len(items)):
            scores(u)
            if u:
                weighted_values(u - 1)
        if items:
            weighted_values(len(items) - 1)

    def grouped(k: int) -> list[tuple[int, QueryGroup]]:
        return [(sq, qg) for sq, (_, start) in enumerate(seqs) for qg in query_groups(s, start, n, k)]

    def load_count(post: list[Insn]) -> int:
        """Weight LOADs a streamed program adds (attention reads no weights, so the pieces of
        the whole program are those of pre + post)."""
        if weights_dram is None:
            return 0
        return len(_loads([(MEM_W, lo, rows, 0) for lo, rows in _stream_pieces(pre + post, wl, hw)], n))

    per_group_insns = H * (2 * bph + 1)                    # attention instructions per group
    key_rows = max(len(query_groups(s, start, n, 1)) for _, start in seqs)   # per sequence
    options = [per_group] if per_group is not None else range(key_rows, 0, -1)
    fitting = []       # (post, its GemmInfos, query groups): every choice the IMEM holds
    for post, post_g in posts:
        budget = hw.imem_depth - 1 - len(pre) - len(post) - load_count(post)   # 1: the HALT
        fitting += [(post, post_g, grouped(k)) for k in options
                    if len(grouped(k)) * per_group_insns <= budget]
    if not fitting:
        post = posts[0][0]
        fewest = len(grouped(per_group or key_rows))
        raise SramFitError(f"the block program needs "
                           f"{len(pre) + len(post) + load_count(post) + 1 + fewest * per_group_insns} "
                           f"instructions (with HALT), the instruction memory holds "
                           f"{hw.imem_depth}; use a build with a deeper IMEM"
                           + ("" if per_group is None else f" or a larger per_group than {per_group}"))
    best = fitting[0]
    if len(fitting) > 1:   # the fastest whole step, overlapped; ties keep fewer groups and parts
        def cost(choice) -> int:
            trial: list[Insn] = []
            attention(choice[2], range(H), trial, [])
            return scheduled_cycles(pre + trial + choice[0], hw)
        best = min(fitting, key=cost)
    post, post_g = best[0], best[1]
    attn: list[Insn] = []
    attn_g: list[GemmInfo] = []
    attention(best[2], range(H), attn, attn_g)
    if gemms is not None:
        gemms.extend(pre_g + attn_g + post_g)
    program = pre + attn + post
    if weights_dram is not None:
        program = stream_weight_loads(program, wl, weights_dram, hw)
    return program
