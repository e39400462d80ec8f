"""Where a whole model's blocks live on one accelerator, and whether they fit.

Weight SRAM: every offloaded block's image (weights, gains, RoPE table for every position)
side by side when resident; one block's image at row 0, reloaded per call, when streaming.
Each image's tables (column scales, gains, RoPE table) go to a bank apart from the block's
matrices (``place_weight_parts``): the SRAMs are banked, one read port per bank.
When the images overflow the weight SRAM by less than the activation SRAM can spare,
``choose_spill`` moves whole weight matrices to the top of the activation SRAM (the GEMMs read
them from there, compiler.layout_weights) so the weights still stay resident: the 16-bit row
addresses cap the weight SRAM at 65536 rows, so at N = 32 a 2.3 MiB model cannot live in it alone.
Activation SRAM: one KV cache region per (layer, sequence) that keeps a KV cache across
calls (decode), plus one transient region shared by calls that keep none (a plain forward),
at the bottom; the step scratch above them; any spilled weights at the top (``a_reserved``
rows, placed independently of the batch so a replan for a larger batch leaves them in place). The step length is chunked so the scratch fits (chunking is exact: compiler.block_program).
DRAM: a staging area for one weight image, then the x and y buffers of one chunk.

Pure arithmetic: nothing here touches a device.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .compiler import WeightLayout
from .errors import SramFitError  # noqa: F401  (raised here; importers use this name too)
from .footprint import bank_mask
from .isa import MEM_W, HwConfig
from .compiler import BlockDims, KvRegion

WEIGHT_MODES = ("auto", "resident", "stream")


def _mib(rows: int, n: int) -> str:
    return f"{rows * n / 2**20:.2f} MiB"


@dataclass
class SramPlan:
    hw: HwConfig
    cap: int                       # KV positions per sequence (max_seq_len rounded up to N)
    batch: int                     # sequences with a persistent KV region per layer (may be 0)
    resident: bool
    weight_rows: list[int]         # per offloaded block
    weight_rows_needed: int        # all blocks resident
    w_bases: list[int]             # per block: first W row of its matrices
    kv_rows_per_block: int         # one sequence, one layer
    kv: dict[tuple[int, int], KvRegion] = field(default_factory=dict)   # (block, seq) -> region
    transient: KvRegion | None = None   # for calls that keep no KV cache
    scratch_a: int = 0
    chunk: int = 0                 # max tokens per accelerator run
    staging_bytes: int = 0
    x_dram: int = 0
    y_dram: int = 0
    notes: list[str] = field(default_factory=list)
    a_reserved: int = 0            # A rows at the top holding spilled weight matrices
    stage_rows: list[int] = field(default_factory=list)   # per block: W + A rows of its image
    t_bases: list[int] = field(default_factory=list)      # per block: first W row of its tables

    @property
    def a_end(self) -> int:
        """First A row above the step scratch (the spilled weights start here)."""
        return self.hw.a_rows - self.a_reserved

    def summary(self) -> dict:
        n = self.hw.n
        return {"weights": "resident" if self.resident else "streamed per call",
                "weight_sram_rows_needed_resident": self.weight_rows_needed,
                "weight_sram_rows_available": self.hw.w_rows,
                "weight_rows_in_activation_sram": self.a_reserved,
                "weight_sram_bytes_needed_resident": self.weight_rows_needed * n,
                "kv_cache_rows": self.kv_rows_per_block * (len(self.weight_rows) * self.batch + 1),
                "activation_sram_rows_available": self.hw.a_rows,
                "max_tokens_per_run": self.chunk, "batch": self.batch, "kv_positions": self.cap,
                "notes": list(self.notes)}


def choose_spill(short: int, sizes: list[dict[str, int]]) -> list[tuple[int, str]]:
    """Weight matrices to move out of the weight SRAM to free at least ``short`` rows.

    sizes: per block, rows of each weight matrix. Largest first while one still fits in what is
    left to free, then the smallest one that covers the rest: little more than ``short`` rows
    of the activation SRAM are taken. -> [(block, matrix name)] (empty when short <= 0).
    """
    if short <= 0:
        return []
    items = sorted(((rows, blk, name) for blk, sz in enumerate(sizes) for name, rows in sz.items()),
                   key=lambda t: (-t[0], t[1], t[2]))
    chosen, left = [], short
    for rows, blk, name in items:
        if rows <= left:
            chosen.append((blk, name))
            left -= rows
    if left > 0:
        rest = [t for t in items if (t[1], t[2]) not in chosen and t[0] >= left]
        if not rest:
            raise SramFitError(f"the weight matrices cannot free {short} weight-SRAM rows")
        chosen.append((rest[-1][1], rest[-1][2]))
    return chosen


def plan_sram(hw: HwConfig, layouts_rows: list[int], dims: list[BlockDims], max_seq_len: int,
              batch: int, weights: str = "auto", a_reserved: int = 0,
              stage_rows: list[int] | None = None) -> SramPlan:
    """Lay out ``len(dims)`` blocks for ``batch`` sequences of up to ``max_seq_len`` tokens.

    layouts_rows: W rows of each block's image. a_reserved: A rows at the top that hold weight
    matrices moved out of W (``choose_spill``; only with the weights resident). stage_rows: W + A
    rows of each block's image (default ``layouts_rows``), for the DRAM staging area.
    Raises SramFitError saying by how much something does not fit (weights in "resident" mode,
    or the KV caches for this batch).
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {WEIGHT_MODES}, got {weights!r}")
    if batch < 0 or max_seq_len < 1:
        raise ValueError(f"batch ({batch}) must be >= 0 and max_seq_len ({max_seq_len}) >= 1")
    n = hw.n
    cap = -(-max_seq_len // n) * n
    need = sum(layouts_rows)
    stage_rows = list(layouts_rows) if stage_rows is None else list(stage_rows)
    notes = []
    resident = need <= hw.w_rows
    if a_reserved and (not resident or weights == "stream"):
        raise ValueError("weight rows in the activation SRAM (a_reserved) need the weights resident")
    a_rows = hw.a_rows - a_reserved          # what the KV caches and the scratch may use
    if a_reserved:
        notes.append(f"{a_reserved} rows ({_mib(a_reserved, n)}) of weight matrices kept at the top "
                     f"of the activation SRAM: the weight SRAM ({hw.w_rows} rows) holds the rest")
    if not resident:
        short = f"{need} weight-SRAM rows ({_mib(need, n)}) needed with all {len(dims)} blocks " \
                f"resident, the build has {hw.w_rows} ({_mib(hw.w_rows, n)}): " \
                f"{need - hw.w_rows} rows ({_mib(need - hw.w_rows, n)}) short"
        if weights == "resident":
            raise SramFitError(short + "; use weights='stream' (or 'auto')")
        notes.append(short + "; streaming each block's weights per call")
    elif weights == "stream":
        resident = False
        notes.append("weights streamed per call (requested)")
    if not resident and max(layouts_rows) > hw.w_rows:
        raise SramFitError(f"one block's image needs {max(layouts_rows)} weight-SRAM rows, the build "
                           f"has {hw.w_rows}: {max(layouts_rows) - hw.w_rows} rows short even streaming")
    w_bases, at = [], 0
    for rows in layouts_rows:
        w_bases.append(at if resident else 0)
        at += rows
    kv_one = dims[0].kv_rows(cap)
    if any(d.kv_rows(cap) != kv_one for d in dims):
        raise ValueError("all offloaded blocks must have the same attention shape")
    kv_total = kv_one * (len(dims) * batch + 1)
    # smallest useful step: one token
    a1, acc1 = max(d.scratch_rows(1, cap)[0] for d in dims), max(d.scratch_rows(1, cap)[1] for d in dims)
    if kv_total + a1 > a_rows or acc1 > hw.acc_rows:
        fits = max(0, (a_rows - a1 - kv_one) // (kv_one * len(dims)))
        spilled = f" ({a_reserved} more hold weights)" if a_reserved else ""
        raise SramFitError(f"KV caches for batch {batch} x {len(dims)} blocks x {cap} positions (+1 "
                           f"transient) need {kv_total} activation-SRAM rows ({_mib(kv_total, n)}) "
                           f"plus {a1} scratch, "
                           f"the build has {a_rows}{spilled}: {kv_total + a1 - a_rows} rows short; "
                           f"the largest batch that fits is {fits}")
    plan = SramPlan(hw=hw, cap=cap, batch=batch, resident=resident, weight_rows=list(layouts_rows),
                    weight_rows_needed=need, w_bases=w_bases, kv_rows_per_block=kv_one, notes=notes,
                    a_reserved=a_reserved, stage_rows=stage_rows)
    for blk in range(len(dims)):
        for seq in range(batch):
            base = (blk * batch + seq) * kv_one
            plan.kv[(blk, seq)] = KvRegion(k_base=base, v_base=base + kv_one // 2, cap=cap)
    base = len(dims) * batch * kv_one
    plan.transient = KvRegion(k_base=base, v_base=base + kv_one // 2, cap=cap)
    plan.scratch_a = kv_total
    hidden = max(d.hb for d in dims) * n
    plan.staging_bytes = -(-max(stage_rows) * n // 256) * 256
    chunk = 0
    for s in range(1, cap + 1):
        a, acc = (max(d.scratch_rows(s, cap)[i] for d in dims) for i in (0, 1))
        dram = plan.staging_bytes + 2 * (-(-s * hidden // 256) * 256)
        if (kv_total + a > a_rows or acc > hw.acc_rows or dram > hw.dram_bytes
                or s * max(d.hb for d in dims) > 0xFFFF):
            break
        chunk = s
    if chunk == 0:
        raise SramFitError(f"not even a one-token step fits the DRAM ({hw.dram_bytes} bytes) next to "
                           f"a {plan.staging_bytes}-byte weight staging area")
    plan.chunk = chunk
    if chunk < cap:
        notes.append(f"steps longer than {chunk} tokens run as several accelerator runs")
    plan.x_dram = plan.staging_bytes
    plan.y_dram = plan.x_dram + -(-chunk * hidden // 256) * 256
    return plan


def layout_rows(layouts: list[WeightLayout]) -> list[int]:
    return [wl.rows for wl in layouts]


# Matrices whose GEMMs may run while a vector op of the same block reads the block's tables
# (column scales, gains, RoPE table): every one but q, whose projection is over before the
# first vector op that reads a table of the block could start (compiler.block_program).
CONCURRENT_MATRICES = ("k", "v", "o", "gate", "up", "down")


def table_bank_cost(layouts: list[WeightLayout], bank_rows: int) -> int:
    """Weight rows of matrices that share a weight-SRAM bank with their own block's tables, over
    ``layouts`` (the matrices in ``CONCURRENT_MATRICES`` placed in W). A GEMM reading such a
    matrix and a vector op reading those tables claim the same bank read port, so one waits for
    the other (footprint.Footprint.conflicts); 0 means no such pair can meet."""
    return sum(_table_cost(wl, wl.base, wl.t_base, bank_rows) for wl in layouts)


def _table_cost(wl: WeightLayout, base: int, t_base: int, bank_rows: int) -> int:
    """``table_bank_cost`` of one block with its matrices moved to ``base`` and its tables to
    ``t_base``."""
    tables = bank_mask((t_base, t_base + wl.rows - wl.mat_rows), bank_rows)
    cost = 0
    for m in CONCURRENT_MATRICES:
        if m in wl.at:
            lo = wl.at[m] - wl.base + base
            if bank_mask((lo, lo + wl.sizes[m]), bank_rows) & tables:
                cost += wl.sizes[m]
    return cost


def place_weight_parts(hw: HwConfig, resident: bool,
                       layouts: list[WeightLayout]) -> tuple[list[int], list[int]]:
    """Where each block's weight matrices and tables go in the weight SRAM: -> (first W row of
    each block's matrices, first W row of each block's tables).

    Streamed (one block's image in W at a time): the matrices from row 0, the tables at the top
    of the weight SRAM, in the last bank, apart from every matrix unless the image nearly fills W.
    Resident: the blocks' matrices packed from row 0 in block order; each block's tables either
    packed from the top or right before some block's matrices, chosen (coordinate descent, two
    passes) to minimise ``table_bank_cost``. The tables on top leave ``pad`` rows above them
    (below); where that does not fit, each block's tables follow its own matrices (one
    contiguous image per block, which fits wherever plan_sram said the images fit)."""
    bank = hw.bank_rows(MEM_W)
    t_rows = [wl.rows - wl.mat_rows for wl in layouts]
    # a ROPE of one block-in-head j > 0 claims the RoPE table from record j on, so its bounding
    # read range runs (bph - 1) records past the table's end: the top slot leaves them in W
    pad = max((wl.bph - 1) * wl.table_rows for wl in layouts)
    nb = len(layouts)
    top = nb + 1                          # slot g <= nb: right before block g's matrices

    def place(slots: list[int]) -> tuple[list[int], list[int]] | None:
        """(matrix bases, table bases) of the slots, None where they collide."""
        bases, t_bases, at = [0] * nb, [0] * nb, 0
        end = hw.w_rows - (pad if top in slots else 0)
        if not resident:      # one block's image at a time, at row 0
            for b in range(nb):
                t_bases[b] = (end - t_rows[b]) if slots[b] == top else layouts[b].mat_rows
            fits = all(layouts[b].mat_rows <= t_bases[b] for b in range(nb))
            return (bases, t_bases) if fits else None
        for g in range(nb + 1):
            for b in range(nb):
                if slots[b] == g:
                    t_bases[b], at = at, at + t_rows[b]
            if g < nb:
                bases[g], at = at, at + layouts[g].mat_rows
        for b in range(nb):
            if slots[b] == top:
                end -= t_rows[b]
                t_bases[b] = end
        return (bases, t_bases) if at <= end else None

    def cost(slots: list[int]) -> int | None:
        placed = place(slots)
        if placed is None:
            return None
        return sum(_table_cost(wl, b, t, bank) for wl, b, t in zip(layouts, *placed))

    contiguous = [b + 1 for b in range(nb)]      # each block's tables after its own matrices
    if not resident:          # one block's image in W at a time: all at row 0, tables on top
        return place([top] * nb) or place(contiguous)
    slots = [top] * nb if cost([top] * nb) is not None else contiguous
    best = cost(slots)
    for _ in range(2):
        for b in range(nb):
            for g in range(nb + 2):
                trial = slots[:b] + [g] + slots[b + 1:]
                c = cost(trial)
                if c is not None and c < best:
                    slots, best = trial, c
    return place(slots)
