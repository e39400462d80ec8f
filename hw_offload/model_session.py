"""The one session: a model's quantized blocks on one accelerator, with on-device KV caches.

    session = ModelSession(blocks, max_seq_len, batch, target="golden")   # or "cycle_model", "verilator"
    session = ModelSession(blocks, max_seq_len, batch, target="verilator", config="edge16")
    y_q = session.run_block(i, x_q, past)        # x_q int8 (B, S, hidden) -> y_q int8 (B, S, hidden)
    session.records                              # one CallRecord per device run (cost.py prices them)

Used for everything that runs blocks on a device: the backend, the benchmarks and the tests
(a single block's prefill is ``ModelSession([qb], S, 0, device=...)`` and ``run_block(0, x_q[None],
0, keep_kv=False)``). Knows devices and instruction programs (compiler.block_program, the same
generator for prefill and decode), nothing about torch.fx. Every check
on the request (batch, positions, dtype, shape) happens before anything is written to the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compiler import (MATRICES, BlockDims, WeightLayout, block_program, from_blocks, layout_weights,
                       rescales, to_blocks, weight_load_program)
from .device_counters import Counters, LinkCounters
from .configs import AccelConfig, resolve
from .golden import GoldenAccelerator
from .isa import OP_HALT, HwConfig, Insn, encode_program
from .quant import QuantizedBlock
from .errors import ConfigMismatchError, KvCapacityError
from .sram_plan import SramFitError, SramPlan, choose_spill, place_weight_parts, plan_sram

TARGETS = ("golden", "cycle_model", "verilator")


@dataclass
class CallRecord:
    """One device run. ``kind``: "weights" (the one-time load of a resident block's image) or
    "step". A step of several sequences in one run (ModelSession.run_block batches them) has
    ``seq`` -1 and ``tokens`` counting the rows of all of them. ``loads_weights``: a step with
    streamed weights that also loaded its block's image (its program interleaves the LOADs,
    compiler.stream_weight_loads; the image's bytes are in its counters and link)."""

    kind: str
    block: int
    seq: int
    past: int
    tokens: int
    counters: Counters
    link: LinkCounters
    loads_weights: bool = False


def make_device(target: str, config: AccelConfig | str | None = None, variant: str = "fast"):
    """One device of accelerator configuration ``config`` (name or AccelConfig; default chip16):

    * ``golden``: numpy, bit-exact, no cycles;
    * ``cycle_model``: the golden model with cycle_model.py's counters (no Verilator build);
    * ``verilator``: the configuration's Verilator build (cached per configuration), counted
      cycles; its reported sizes are checked against the configuration.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    config = resolve(config)
    if target == "golden":
        return GoldenAccelerator(config)
    if target == "cycle_model":
        from .golden_cycles import CycleModelAccelerator
        return CycleModelAccelerator(config)
    from .driver import Accelerator
    return Accelerator(variant, config=config)


def _check_fits_array(blocks: list[QuantizedBlock], n: int) -> None:
    """The activations and the MLP's hidden layer are tiled in N-wide column blocks: hidden and
    intermediate must be multiples of the array size (checked here so that a model too narrow
    for a configuration is named as such, not as a failed split deep in the compiler)."""
    for i, qb in enumerate(blocks):
        dims = {"hidden": qb.hidden, "intermediate": qb.intermediate}
        bad = {k: v for k, v in dims.items() if v % n}
        if bad:
            raise SramFitError(f"block {i}: {', '.join(f'{k} {v}' for k, v in bad.items())} "
                               f"not a multiple of the {n}x{n} array; this model needs a "
                               f"configuration whose array size divides them")


def _placed(plan: SramPlan, layouts: list[WeightLayout]) -> list[WeightLayout]:
    """The layouts at the W rows the plan gives their matrices and tables (sram_plan.
    place_weight_parts: tables in banks apart from the matrices the GEMMs read beside them)."""
    plan.w_bases, plan.t_bases = place_weight_parts(plan.hw, plan.resident, layouts)
    return [wl.with_bases(b, t) for wl, b, t in zip(layouts, plan.w_bases, plan.t_bases)]


def plan_blocks(blocks: list[QuantizedBlock], hw: HwConfig, max_seq_len: int, batch: int,
                weights: str = "auto") -> tuple[SramPlan, list[WeightLayout], list[BlockDims]]:
    """The SRAM plan for these blocks (raises SramFitError), their rebased weight layouts and dims.

    Weights that overflow the weight SRAM stay resident (unless ``weights="stream"``) when some
    of their matrices fit at the top of the activation SRAM beside this batch's KV caches
    (sram_plan.choose_spill); otherwise "auto" streams them and "resident" says why neither fits.
    """
    layouts = [layout_weights(qb, hw, max_seq_len) for qb in blocks]
    dims = [BlockDims.of(qb, hw.n, wl.bph) for qb, wl in zip(blocks, layouts)]
    short = sum(wl.rows for wl in layouts) - hw.w_rows
    if short > 0 and weights != "stream":
        try:
            return _plan_spilled(blocks, hw, max_seq_len, batch, weights, layouts, dims, short)
        except SramFitError as spill_error:
            if weights == "resident":
                try:
                    plan_sram(hw, [wl.rows for wl in layouts], dims, max_seq_len, batch, weights)
                except SramFitError as e:
                    raise SramFitError(f"{e}; nor do the weights fit with matrices moved to the "
                                       f"activation SRAM: {spill_error}") from spill_error
                raise
    plan = plan_sram(hw, [wl.rows for wl in layouts], dims, max_seq_len, batch, weights)
    return plan, _placed(plan, layouts), dims


def _plan_spilled(blocks, hw, max_seq_len, batch, weights, layouts, dims, short):
    """plan_blocks with whole weight matrices moved to the top of the activation SRAM."""
    chosen = choose_spill(short, [{m: wl.sizes[m] for m in MATRICES} for wl in layouts])
    moved = sum(layouts[blk].sizes[name] for blk, name in chosen)
    if moved >= hw.a_rows:
        raise SramFitError(f"{moved} weight rows would have to move to the activation SRAM, "
                           f"which has {hw.a_rows}")
    a_at, spilled = hw.a_rows - moved, []
    for i, (qb, wl) in enumerate(zip(blocks, layouts)):
        names = tuple(m for m in MATRICES if (i, m) in chosen)
        if names:
            wl = layout_weights(qb, hw, max_seq_len, in_a=names, a_base=a_at)
            a_at += wl.a_rows
        spilled.append(wl)
    plan = plan_sram(hw, [wl.rows for wl in spilled], dims, max_seq_len, batch, weights,
                     a_reserved=moved, stage_rows=[wl.rows + wl.a_rows for wl in spilled])
    return plan, _placed(plan, spilled), dims


@dataclass
class WaveRequest:
    """Write a waveform (FST or VCD, by ``path``'s extension) of one device step: the
    ``step``-th step run (0-based, counting every chunk and sequence) of decoder ``block``."""

    path: str
    block: int = 0
    step: int = 0
    written: bool = False


class ModelSession:
    """All offloaded blocks of one model on one device; weights resident or streamed."""

    def __init__(self, blocks: list[QuantizedBlock], max_seq_len: int, batch: int,
                 target: str = "golden", weights: str = "auto", device=None,
                 max_cycles: int = 500_000_000, progress: bool | None = None, variant: str = "fast",
                 trace: WaveRequest | None = None, config: AccelConfig | str | None = None):
        self.blocks, self.target, self.max_seq_len = blocks, target, max_seq_len
        self.trace = trace
        self._steps_run: dict[int, int] = {}  # block -> device step runs so far (for trace.step)
        if device is None:     # refuse a model the array cannot tile before building anything
            _check_fits_array(blocks, resolve(config).n)
        self.device = device if device is not None else make_device(target, config, variant)
        self.hw: HwConfig = self.device.config
        # the configuration asked for (with its clock); a device passed in brings its own
        self.accel_config: AccelConfig | None = (resolve(config) if device is None or config is not None
                                                 else getattr(device, "accel_config", None))
        if self.accel_config is not None and self.accel_config.hw() != self.hw:
            raise ConfigMismatchError(f"the device given has sizes {self.hw}, but configuration "
                                      f"{self.accel_config.name!r} needs {self.accel_config.hw()}")
        _check_fits_array(blocks, self.hw.n)
        self.max_cycles, self.progress, self.weights_mode = max_cycles, progress, weights
        self.plan, self.layouts, self.dims = plan_blocks(blocks, self.hw, max_seq_len, batch, weights)
        self.rescales = [rescales(qb) for qb in blocks]
        # where max_seq_len came from, for the capacity error (the backend says which option)
        self.capacity_from = "the max_seq_len given to ModelSession"
        self.records: list[CallRecord] = []
        self.setup_records: list[CallRecord] = []
        self._loaded: int | None = None      # block whose image is in W SRAM (streaming)
        self._kv_len: dict[tuple[int, int], int] = {}   # (block, seq) -> positions written
        if self.plan.resident:
            for i in range(len(blocks)):
                self.setup_records.append(self._load_weights(i, past=0))

    # ---------------- checks ----------------
    def check_request(self, block: int, batch: int, seq: int, past: int, keep_kv: bool = True) -> None:
        """Raise before anything is sent when a request cannot run on this plan.

        keep_kv: the sequences keep their KV cache on the device for later steps (decode);
        False for a plain forward, which uses the one transient region and must start at 0."""
        self._check_block(block)
        if seq < 1:
            raise ValueError(f"a step needs at least one token, got {seq}")
        if past < 0:
            raise ValueError(f"the start position must be >= 0, got {past}")
        if past + seq > self.max_seq_len:
            raise KvCapacityError(self._capacity_message(past, seq, batch if keep_kv else 0))
        if not keep_kv:
            if past:
                raise ValueError(f"a call without a KV cache must start at position 0, got {past}")
            return
        if batch > self.plan.batch:
            if past > 0:
                raise SramFitError(f"batch {batch} > {self.plan.batch} sequences with a KV cache on "
                                   "the device; a larger batch can only start a new sequence")
            self.replan(batch)
        for s in range(batch):
            have = self._kv_len.get((block, s), 0)
            if past > have:
                raise ValueError(f"block {block} sequence {s}: step at position {past} but the "
                                 f"device KV cache holds only {have} positions (interrupted or "
                                 "skipped steps); start again from position 0")

    def _check_block(self, block) -> None:
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)):
            raise TypeError(f"block index must be an int, got {type(block).__name__} {block!r}")
        if not 0 <= block < len(self.blocks):
            raise IndexError(f"block index {block} is out of range: this session holds "
                             f"{len(self.blocks)} block(s), valid indices 0..{len(self.blocks) - 1}")

    def _capacity_message(self, past: int, seq: int, batch: int) -> str:
        fits = self.max_positions(max(batch, 1))
        sram = (f"the activation SRAM ({self.hw.a_rows} rows) would hold up to {fits} positions per "
                f"sequence for batch {max(batch, 1)}" if fits else
                f"the activation SRAM ({self.hw.a_rows} rows) holds no longer plan for batch {max(batch, 1)}")
        return (f"position {past} + {seq} new token(s) = {past + seq} positions exceeds the device KV "
                f"capacity of {self.max_seq_len} positions per sequence: the session's RoPE table and "
                f"KV cache regions were planned for max_seq_len {self.max_seq_len} ({self.capacity_from}); "
                f"{sram}. Plan for more positions (max_seq_len) and start the sequence again")

    def max_positions(self, batch: int) -> int:
        """The largest max_seq_len (a multiple of N) whose plan fits this device for ``batch``
        sequences with a KV cache (0 if none beyond the current one does); for error messages."""
        n = self.hw.n

        def fits(length: int) -> bool:
            try:
                plan_blocks(self.blocks, self.hw, length, batch, self.weights_mode)
            except SramFitError:
                return False
            return True
        lo = -(-self.max_seq_len // n) * n
        if not fits(lo):
            return 0
        hi = lo
        while fits(hi * 2):       # doubling, then bisection: a few dozen plans at most
            hi *= 2
            if hi > 1 << 24:
                return hi
        lo, hi = hi, hi * 2       # fits(lo), not fits(hi)
        while hi - lo > n:
            mid = (lo + hi) // 2 // n * n
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def replan(self, batch: int) -> None:
        """A new plan for a larger batch (KV regions move; weights stay where they are)."""
        plan = plan_sram(self.hw, self.plan.weight_rows, self.dims, self.max_seq_len, batch,
                         self.weights_mode, a_reserved=self.plan.a_reserved,
                         stage_rows=self.plan.stage_rows)
        plan.w_bases, plan.t_bases = self.plan.w_bases, self.plan.t_bases
        self.plan, self._kv_len = plan, {}

    # ---------------- execution ----------------
    def _run(self, program: list[Insn]) -> Counters:
        self.device.write_program(encode_program(program + [Insn(OP_HALT)]))
        return self.device.run(self.max_cycles)

    def _run_step(self, block: int, program: list[Insn]) -> Counters:
        """One block step; the one that ``self.trace`` names is written as a waveform."""
        index = self._steps_run.get(block, 0)
        self._steps_run[block] = index + 1
        t = self.trace
        if t is None or (t.block, t.step) != (block, index):
            return self._run(program)
        self.device.trace(t.path)
        try:
            return self._run(program)
        finally:
            self.device.close_trace()
            t.written = True

    def _load_weights(self, block: int, past: int) -> CallRecord:
        wl, before = self.layouts[block], self.device.link.copy()
        self.device.write_mem(0, wl.dram_image())
        c = self._run(weight_load_program(wl, 0, self.hw.n))
        self._loaded = block
        return CallRecord("weights", block, -1, past, 0, c, self.device.link - before)

    def run_block(self, block: int, x_q: np.ndarray, past: int, keep_kv: bool = True) -> np.ndarray:
        """x_q: int8 (B, S, hidden) at positions past..past+S-1 -> y_q int8 (B, S, hidden).

        keep_kv: append to each sequence's KV cache on the device (see check_request)."""
        self._check_block(block)
        x_q = np.asarray(x_q)
        hidden = self.blocks[block].hidden
        if x_q.dtype != np.int8 or x_q.ndim != 3 or x_q.shape[2] != hidden:
            raise ValueError(f"x_q must be int8 (batch, seq, {hidden}), got {x_q.dtype} {x_q.shape}")
        bsz, seq = x_q.shape[:2]
        self.check_request(block, bsz, seq, past, keep_kv)
        # sequences with their own cache run together, as many per run as fit one run's scratch
        # and the instruction memory (each weight tile is then loaded once per run, not once per
        # sequence); else one run per sequence and chunk
        k = self._sequences_per_run(block, bsz, seq, past) if keep_kv else 1
        if k > 1:
            runs = [(list(range(b, min(b + k, bsz))), past, seq) for b in range(0, bsz, k)]
        else:
            runs = [([b], p, min(self.plan.chunk, past + seq - p))
                    for b in range(bsz) for p in range(past, past + seq, self.plan.chunk)]
        # streamed weights: the call's first run loads the block's image (later runs of the
        # call find it in the weight SRAM); every call reloads, as another session or a
        # resident load may have used the device's weight SRAM in between
        self._loaded = None
        bar = self._bar(len(runs), block)
        y = np.empty_like(x_q)
        try:
            for seqs, p, length in runs:
                rows = x_q[seqs, p - past:p - past + length]
                y[seqs, p - past:p - past + length] = self._step(block, seqs, rows, p, keep_kv)
                bar.update()
        except BaseException:
            # Interrupted or failed mid-step: the KV caches of this block are now incomplete.
            for s in range(bsz):
                self._kv_len[(block, s)] = min(self._kv_len.get((block, s), 0), past)
            raise
        finally:
            bar.close()
        return y

    def _sequences_per_run(self, block: int, bsz: int, seq: int, past: int) -> int:
        """How many of a batch's sequences one device run takes (1: one run per sequence)."""
        for k in range(min(bsz, self.plan.chunk // seq), 1, -1):
            try:   # with the weight LOADs a streamed block's first run carries
                self._program(block, list(range(k)), seq, past, keep_kv=True,
                              load_weights=not self.plan.resident)
            except SramFitError:     # the program outgrows the instruction memory
                continue
            return k
        return 1

    def _program(self, block: int, seqs: list[int], length: int, p: int, keep_kv: bool,
                 load_weights: bool = False):
        """The step's program; ``load_weights``: it also loads the block's (streamed) image
        from the DRAM staging area at 0, interleaved with the compute."""
        regions = [self.plan.kv[(block, s)] if keep_kv else self.plan.transient for s in seqs]
        kv, start = (regions[0], p) if len(seqs) == 1 else (regions, [p] * len(seqs))
        return block_program(self.blocks[block], self.layouts[block], self.rescales[block],
                             self.hw, kv, length, start, self.plan.scratch_a, self.plan.x_dram,
                             self.plan.y_dram, a_end=self.plan.a_end,
                             weights_dram=0 if load_weights else None)

    def _step(self, block: int, seqs: list[int], x: np.ndarray, p: int, keep_kv: bool) -> np.ndarray:
        """One device run: x int8 (len(seqs), L, hidden), sequences ``seqs`` at positions
        p..p+L-1 (compiler.block_program's batched step when there are several) -> y, same shape."""
        n, hidden = self.hw.n, x.shape[2]
        nseq, length = x.shape[:2]
        load = not self.plan.resident and self._loaded != block
        program = self._program(block, seqs, length, p, keep_kv, load_weights=load)
        before = self.device.link.copy()
        image = self.layouts[block].dram_image() if load else np.zeros(0, dtype=np.uint8)
        if load:
            self._loaded = None            # W SRAM is being overwritten
            self.device.write_mem(0, image)
        self.device.write_mem(self.plan.x_dram, to_blocks(x.reshape(nseq * length, hidden), n).reshape(-1))
        c = self._run_step(block, program)
        if load:
            self._loaded = block
        nbytes = nseq * length * hidden
        out = self.device.read_mem(self.plan.y_dram, nbytes)
        if c.bytes_out != nbytes or c.bytes_in != nbytes + image.size:
            raise RuntimeError(f"device moved {c.bytes_in}/{c.bytes_out} bytes, expected "
                               f"{nbytes + image.size}/{nbytes}: the output was not written")
        if keep_kv:
            for s in seqs:
                self._kv_len[(block, s)] = p + length
        self.records.append(CallRecord("step", block, seqs[0] if nseq == 1 else -1, p,
                                       nseq * length, c, self.device.link - before, load))
        return from_blocks(out.view(np.int8), nseq * length, hidden // n, n).reshape(nseq, length, hidden)

    def _bar(self, runs: int, block: int):
        from tqdm.auto import tqdm
        show = self.progress if self.progress is not None else (self.target == "verilator" and runs > 1)
        return tqdm(total=runs, desc=f"rtl block {block} ({self.target})", unit="run",
                    leave=False, disable=not show)

    def close(self) -> None:
        close = getattr(self.device, "close", None)
        if close:
            close()
