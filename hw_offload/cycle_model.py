"""Cycle model of the accelerator: the counters a run of the RTL must report, from the program.

The golden model (golden.py) is bit-exact but has no clock; this module gives it one, so the
fuzzer (fuzz.py) can check the RTL's cycle, busy and stall counters exactly. It is written from
the timing rules in ISA.md and the unit descriptions, not from a trace of the RTL:

* Controller (``run_cycles``, ISA.md "Overlap"): in-order issue, one FETCH cycle and at least
  one DECODE cycle per instruction, the DMA engine, GEMM unit and vector unit running at once;
  an instruction waits in DECODE for its unit, for conflicting instructions in flight on the
  others (``footprint.py``) and, for a LOAD, for posted writes. A DMA instruction keeps the
  DMA busy until its last beat (``mem_timing.MemoryTiming``: one cycle per N-byte line at the
  default timing); the GEMM and vector units report ``done`` one cycle after their last busy
  cycle, and the instruction retires then.
* Writes are posted: a LOAD, a HALT or a stop holds in DECODE (a pc error in FETCH) until the
  last STORE's response is back; a HALT or a stop also waits for every unit to retire.
* A run that stops at a malformed instruction counts its FETCH and DECODE; running past the
  end of instruction memory counts one FETCH.
* Vector unit (vector_unit.sv): ``lanes`` elements per beat, one read request per SRAM per
  cycle, 13 pipeline stages from a beat's (last) addresses to its write. One cycle to start,
  then one cycle per W row of the per-block tables it copies into its table SRAM
  (``table_fill_cycles``), one decision cycle before each item of beats, and 13 cycles of
  drain after the last beat. A beat takes one cycle, two for SWIGLU (gate and up through the
  one ACC port) and for ROPE with two table rows per (position, block) (``beat_cycles``).
  REQ/ROPE/SWIGLU/RESADD are one item of ``rows * blocks * N/lanes`` beats. RMS/SMAX issue, per row, a reduction item
  (RMS: one pass; SMAX: max pass then sum pass) and an output item (one pass), in the order
  RED(0), RED(1), OUT(0), RED(2), OUT(1), ...; the shared divider takes a row's reduction
  result once it has settled in the pipeline and the previous row's result has been taken,
  and an output item waits for its row's divider result (``vector_busy_cycles``).
* GEMM: the tile sequencer of gemm_unit.sv (loader and injector, two weight banks, a bank
  reusable N cycles after its last row entered the array, synchronous SRAM reads one cycle
  before the array uses a row, 2N-1 cycles of array latency, and with B in the activation
  SRAM one A port that the injector has first), stepped cycle by cycle in
  ``gemm_busy_cycles``.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from .footprint import UNIT_DMA, UNIT_GEMM, UNIT_VECTOR, Footprint, footprint
from .isa import (COLSCALE_A, COLSCALE_B, GEMM_B_FROM_A, MEM_ACC, OP_GEMM, OP_HALT, OP_LOAD, OP_RMS,
                  OP_ROPE, OP_SMAX, OP_STORE, OP_SWIGLU, VECTOR_OPS, HwConfig, Insn)
from .mem_timing import MemoryTiming, default_timing

VEC_STAGES = 13     # a beat's write happens in pipeline stage 13 (addresses are stage 0)
# stage in which a row's last reduction beat hands the sum to the divider (RMS: sum of
# squares; SMAX: sum of exp)
RED_HANDOVER = {OP_RMS: 4, OP_SMAX: 12}
# cycles from the divider taking a row to its result being visible to the sequencer:
# SMAX one 32-bit divide (2 bits per cycle) + 1; RMS divide, square root (8), divide + 1
DIVIDER_CYCLES = {OP_RMS: 16 + 8 + 16 + 1, OP_SMAX: 16 + 1}
FETCH_DECODE = 2     # cycles from an instruction's FETCH to its dispatch, at the earliest
DONE_HANDOVER = 1    # the GEMM/vector unit's done cycle, after its last busy one, before retiring


@dataclass
class CycleCounts:
    """The clocked counters of device_counters.Counters (bytes and instructions come from golden)."""

    cycles: int = 0
    array_busy: int = 0
    vector_busy: int = 0
    dma_busy: int = 0
    stall: int = 0
    overlap: int = 0        # cycles in which at least two units are busy
    all_busy: int = 0       # cycles in which all three are busy

    def to_dict(self) -> dict:
        return dict(cycles=self.cycles, array_busy=self.array_busy, vector_busy=self.vector_busy,
                    dma_busy=self.dma_busy, stall=self.stall, overlap=self.overlap,
                    all_busy=self.all_busy)


@functools.lru_cache(maxsize=65536)   # a pure function of ints; the compiler prices many programs
def gemm_busy_cycles(m: int, kb: int, nb: int, n: int, b_from_a: bool = False) -> int:
    """Cycles gemm_unit is busy for C[m x nb*n] = A[m x kb*n] * B[kb*n x nb*n]; ``b_from_a``:
    B is read from the activation SRAM, through the one A port the injector also uses.

    Steps the sequencer's state (not its data) one cycle at a time; every assignment uses the
    values of the previous cycle, as the RTL's non-blocking assignments do. The array acts on
    a row one cycle after the sequencer put its address out (synchronous SRAM reads), and the
    loader starts in the start cycle. O(m * kb * nb).
    """
    tiles, lat = kb * nb, 2 * n - 1
    now = 0
    ld_busy, ld_tile, ld_j = True, 0, 0
    inj_busy, inj_tile, inj_m = False, 0, 0
    loaded, free_at = [False, False], [0, 0]
    last_read = -(1 << 40)            # last cycle the injector read an A row
    while True:
        # the row read at last_read enters the array at last_read + 1 and holds it `lat` cycles
        if inj_tile == tiles and not inj_busy and now - last_read > lat + 1:
            return now + 1            # this cycle is still busy; done is raised at its end
        ld_bank, inj_bank = ld_tile & 1, inj_tile & 1
        ld_rd = ld_busy and not (b_from_a and inj_busy)   # the injector has the A port first
        ld_fin = ld_rd and ld_j == n - 1
        # a bank whose last row is read this cycle is ready for the injector from the next one
        ready = [loaded[b] or (ld_fin and ld_bank == b) for b in (0, 1)]
        nxt_loaded = list(loaded)
        # loader: N row reads per tile into the idle bank, after that bank's reuse time
        if ld_busy:
            if ld_fin:
                ld_busy = False
                nxt_loaded[ld_bank] = True
                ld_tile += 1
            elif ld_rd:
                ld_j += 1
        elif ld_tile < tiles and not loaded[ld_bank] and now >= free_at[ld_bank]:
            ld_busy, ld_j = True, 0
        # injector: m rows per tile; chains into the next tile when its bank is ready
        if inj_busy:
            last_read = now
            if inj_m == m - 1:
                inj_busy = inj_tile + 1 < tiles and ready[1 - inj_bank]
                inj_m = 0
                nxt_loaded[inj_bank] = False
                free_at[inj_bank] = now + n
                inj_tile += 1
            else:
                inj_m += 1
        elif inj_tile < tiles and ready[inj_bank]:
            inj_busy, inj_m = True, 0
        loaded = nxt_loaded
        now += 1


def table_fill_cycles(i: Insn) -> int:
    """Cycles the vector unit spends copying ``i``'s per-block tables from the weight SRAM into
    its table SRAM, one W row per cycle: RMS's gain (one row per block), and each column-scale
    table its flags ask for (two rows per block each)."""
    rows_per_block = ((1 if i.op == OP_RMS else 0) + (2 if i.flags & COLSCALE_A else 0)
                      + (2 if i.flags & COLSCALE_B else 0))
    return i.blocks * rows_per_block


def beat_cycles(i: Insn, n: int) -> int:
    """Cycles per beat: 2 where a beat needs two rows of one SRAM through its one read port
    (SWIGLU's gate and up rows from ACC; ROPE's two table rows from W when ``2*aux > n``)."""
    two = i.op == OP_SWIGLU or (i.op == OP_ROPE and 2 * i.aux > n)
    return 2 if two else 1


def vector_busy_cycles(i: Insn, n: int, lanes: int | None = None) -> int:
    """Cycles the vector unit is busy for one (valid) vector instruction, ``lanes`` (default
    ``n``) elements per beat. Follows vector_unit.sv's sequencer item by item."""
    lanes = n if lanes is None else lanes
    beats = i.blocks * (n // lanes)               # beats per pass over one row
    fill = table_fill_cycles(i)
    if i.op not in (OP_RMS, OP_SMAX):             # start, table fill, the beats, drain
        return 1 + fill + i.rows * beats * beat_cycles(i, n) + VEC_STAGES
    red_beats = beats * (2 if i.op == OP_SMAX else 1)
    handover, div = RED_HANDOVER[i.op], DIVIDER_CYCLES[i.op]
    t = 1 + fill                                  # cycle of the sequencer's next decision
    pend_seen = []                                # row -> cycle its reduction reaches the divider
    out_start = []                                # row -> cycle its output item was started
    red_next = out_next = 0
    end = 0
    while out_next < i.rows:
        if red_next < i.rows and red_next <= out_next + 1:
            end = t + red_beats                   # beats issued in cycles t+1 .. t+red_beats
            pend_seen.append(end + handover + 1)
            red_next += 1
        else:
            k = out_next
            # the divider takes row k when its sum is there and row k-1's result was taken
            take = pend_seen[k] if k == 0 else max(pend_seen[k], out_start[k - 1] + 1)
            s = max(t, take + div)
            out_start.append(s)
            end = s + beats
            out_next += 1
        t = end + 1
    return end + VEC_STAGES


def insn_cycles(i: Insn, cfg: HwConfig, timing: MemoryTiming | None = None,
                lanes: int | None = None) -> CycleCounts:
    """One valid instruction (HALT included) run alone: its unit's busy cycles, and as
    ``stall`` its FETCH, DECODE and (GEMM / vector) done cycle, so ``cycles`` is what it would
    cost if nothing overlapped it. run_cycles / schedule use only the busy cycles (overlap,
    hazard and posted-write waits are theirs); ``lanes``: the build's vector lanes
    (``configs.AccelConfig.lanes``; default ``cfg.n``, the RTL's default ``LANES = N``)."""
    timing = timing or default_timing()
    c = CycleCounts(stall=FETCH_DECODE)
    if i.op in (OP_LOAD, OP_STORE):
        beats = i.rows * (4 if (i.flags & 3) == MEM_ACC else 1)
        c.dma_busy = (timing.load_busy if i.op == OP_LOAD else timing.store_busy)(beats, cfg.n)
    elif i.op == OP_GEMM:
        c.array_busy = gemm_busy_cycles(i.rows, i.blocks, i.aux, cfg.n,
                                        b_from_a=bool(i.flags & GEMM_B_FROM_A))
        c.stall += DONE_HANDOVER
    elif i.op in VECTOR_OPS:
        c.vector_busy = vector_busy_cycles(i, cfg.n, lanes)
        c.stall += DONE_HANDOVER
    elif i.op != OP_HALT:
        raise ValueError(f"no cycle model for opcode 0x{i.op:02x}")
    c.cycles = c.array_busy + c.vector_busy + c.dma_busy + c.stall
    return c


def run_cycles(executed: list[Insn], cfg: HwConfig, stop: str = "halt",
               timing: MemoryTiming | None = None, lanes: int | None = None) -> CycleCounts:
    """Counters of a run that executed ``executed`` (the last one HALT when ``stop`` is "halt")
    with the off-chip memory ``timing`` (default: the default configuration's) and ``lanes``
    vector lanes (default N).

    ``stop`` = "decode_error": the run then failed decoding one more instruction (FETCH +
    DECODE counted); "pc_error": it then fetched past the end of instruction memory (FETCH).

    The overlapping controller (ISA.md, "Overlap"), run cycle 0 being the first FETCH:

    * instruction k is fetched in cycle ``f = d(k-1) + 1`` (``f = 0`` for the first) and
      dispatched from DECODE in the first cycle ``d >= f + 1`` in which its unit is free
      (the unit's previous instruction retired before ``d``), no instruction in flight on
      another unit conflicts with it (``footprint.Footprint.conflicts``; it waits until that
      one has retired), and, for a LOAD, every posted write has been acknowledged;
    * its unit is busy in cycles ``d + 1 .. d + busy`` (``insn_cycles``); it retires at the end
      of cycle ``e = d + busy`` (DMA: its last beat) or ``d + busy + 1`` (GEMM / vector unit:
      the ``done`` cycle);
    * HALT, a decode error or a pc error stops the run in the first cycle (from its DECODE,
      or FETCH for the pc error) in which every unit has retired and every write has been
      acknowledged; that cycle is the run's last.

    Busy counters add up per unit; ``stall`` counts the cycles in which no unit is busy,
    ``overlap`` those with two or three busy and ``all_busy`` those with all three, so
    ``cycles = stall + array_busy + vector_busy + dma_busy - overlap - all_busy``.
    """
    timing = timing or default_timing()
    body = executed[:-1] if executed and executed[-1].op == OP_HALT else list(executed)
    if stop == "halt" and len(body) == len(executed):
        raise ValueError("run_cycles: stop='halt' but the executed program has no HALT")
    s = schedule(body, cfg, timing, lanes)
    total = CycleCounts(array_busy=s.busy[UNIT_GEMM], vector_busy=s.busy[UNIT_VECTOR],
                        dma_busy=s.busy[UNIT_DMA])
    # HALT (DECODE in f + 1), a decode error (FETCH f, DECODE f + 1) or a pc error (FETCH f)
    # stops the run once every unit has retired and every write is acknowledged
    first = s.next_fetch + (0 if stop == "pc_error" else 1)
    total.cycles = max(first, s.drained) + 1        # cycles 0 .. the stop cycle
    _count_overlap(total, s.busy_spans)
    return total


@dataclass
class Schedule:
    """When each instruction of a program (no HALT) issues and retires under run_cycles'
    rules: ``dispatch[k]`` / ``retire[k]`` are instruction k's DECODE-dispatch cycle and the
    last cycle it holds its unit."""

    dispatch: list[int]
    retire: list[int]
    busy_spans: list[tuple[int, int]]   # (first, last) busy cycle of every instruction
    busy: dict[str, int]                # unit -> busy cycles
    next_fetch: int                     # FETCH cycle of the instruction after the last
    drained: int                        # first cycle with every unit retired, writes acknowledged


def schedule(program: list[Insn], cfg: HwConfig, timing: MemoryTiming | None = None,
             lanes: int | None = None) -> Schedule:
    """The issue schedule of ``program`` (valid instructions, no HALT): the one implementation
    of the overlapping controller's rules (run_cycles' docstring), used by run_cycles and by
    the compiler when it places weight LOADs."""
    timing = timing or default_timing()
    sched = Schedule([], [], [], {UNIT_DMA: 0, UNIT_GEMM: 0, UNIT_VECTOR: 0}, 0, 0)
    retired_at: dict[str, int] = {}            # unit -> cycle its last instruction retired
    inflight: dict[str, tuple[int, Footprint]] = {}  # unit -> (retire cycle, footprint)
    writes_done = 0                            # first cycle with no posted write outstanding
    f = 0                                      # FETCH cycle of the next instruction
    for i in program:
        fp = footprint(i, cfg)
        if fp.unit is None:
            raise ValueError("schedule: HALT inside a program (run_cycles handles the stop)")
        d = max(f + 1, retired_at.get(fp.unit, -1) + 1)
        for unit, (e, other) in inflight.items():
            if unit != fp.unit and fp.conflicts(other):
                d = max(d, e + 1)
        if i.op == OP_LOAD:
            d = max(d, writes_done)
        busy = _busy_cycles(_shape(i), cfg, timing, lanes)
        sched.busy[fp.unit] += busy
        sched.busy_spans.append((d + 1, d + busy))
        e = d + busy + (0 if fp.unit == UNIT_DMA else DONE_HANDOVER)
        inflight[fp.unit] = (e, fp)
        retired_at[fp.unit] = e
        if i.op == OP_STORE:                   # posted: acknowledged ack_cycles after its last beat
            writes_done = max(writes_done, e + timing.ack_cycles)
        sched.dispatch.append(d)
        sched.retire.append(e)
        f = d + 1
    sched.next_fetch = f
    sched.drained = max([writes_done] + [e + 1 for e, _ in inflight.values()])
    return sched


def _shape(i: Insn) -> Insn:
    """``i`` with its addresses zeroed: a unit's busy cycles do not depend on them."""
    return dataclasses.replace(i, dst=0, src0=0, src1=0, dram=0, cs0=0, cs1=0)


@functools.lru_cache(maxsize=8192)
def _busy_cycles(shape: Insn, cfg: HwConfig, timing: MemoryTiming, lanes: int | None) -> int:
    """Busy cycles of one instruction shape on its unit (cached: the compiler prices many
    programs made of few shapes)."""
    c = insn_cycles(shape, cfg, timing, lanes)
    return c.array_busy + c.vector_busy + c.dma_busy


def _count_overlap(total: CycleCounts, spans: list[tuple[int, int]]) -> None:
    """Fill ``stall``, ``overlap`` and ``all_busy`` from the busy spans (inclusive, one per
    instruction; a unit's own spans never overlap) of a run of ``total.cycles`` cycles."""
    edges: dict[int, int] = {}
    for lo, hi in spans:
        if hi >= lo:
            edges[lo] = edges.get(lo, 0) + 1
            edges[hi + 1] = edges.get(hi + 1, 0) - 1
    level, prev, hist = 0, 0, [0, 0, 0, 0]
    for t in sorted(edges) + [total.cycles]:
        hist[min(level, 3)] += t - prev
        if t in edges:
            level += edges.pop(t)
        prev = t
    total.stall = hist[0]
    total.overlap = hist[2] + hist[3]
    total.all_busy = hist[3]
