"""torch.compile backend "rtl": whole decoder blocks on the (simulated) accelerator.

    compiled = torch.compile(model, backend="rtl")                  # calibrates on the first call
    compiled = torch.compile(model, backend="rtl", options={"target": "verilator"})
    compiled = torch.compile(model, backend="rtl", options={"config": "fpga32"})  # another build
    compiled = hw_offload.offload(model, calibration=ids, target="golden", weights="auto")

Knows torch.fx, nothing about instruction encodings: partition.py finds and checks the blocks,
calibrate.py quantizes them, model_session.py runs them (golden or Verilator), cost.py prices
the recorded calls (``context_of(model).price(records)``, at the configuration's clock and the
options' link). Each offloaded block becomes one ``call_module`` node (``RtlBlock``) taking
(x, past); embeddings, final norm, LM head and every block that fails a check stay on the host.

Errors: a request the accelerator cannot hold (batch or positions beyond the SRAM plan or
the KV capacity) raises before anything is sent, and so does a NaN / inf block input. Weights
written after quantization are quantized again (refused mid-sequence). A failure while running
falls back, with a warning, to the float block on the host for that block from then on; it
never returns numbers that did not come from a completed run.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch.fx import GraphModule

from . import calibrate
from .configs import AccelConfig, with_clock
from .cost import CallCost, HostLink, total_cost
from .model_session import TARGETS, ModelSession, WaveRequest
from .partition import BlockGroup, describe, find_blocks
from .quant import QuantizedBlock, quantize, require_finite
from .sram_plan import WEIGHT_MODES

log = logging.getLogger("hw_offload")


@dataclass(frozen=True)
class RtlOptions:
    """Switches of the backend (``torch.compile(..., options={...})`` takes the same names)."""

    target: str = "golden"             # "golden" (fast, bit-exact), "cycle_model" (golden +
                                       # cycle_model.py's counts) or "verilator" (counted cycles)
    variant: str = "fast"              # Verilator build: "fast" or "test" (assertions on)
    weights: str = "auto"              # "auto", "resident" or "stream"
    max_seq_len: int | None = None     # KV / RoPE capacity; default: the KV cache's, or the input's
    # the accelerator: a configs.AccelConfig or its name; None: chip16. After construction it
    # is always the AccelConfig, and clock_mhz is its clock (see __post_init__).
    config: AccelConfig | str | None = None
    clock_mhz: float | None = None     # the clock that prices counted cycles; None: the config's
    link: HostLink = HostLink()        # the host link that prices counted bytes / transactions
    progress: bool | None = None       # tqdm bar; None: on for multi-run Verilator calls
    max_cycles: int = 500_000_000
    per_channel: bool = True           # int8 weights: one scale per output channel; False: per matrix
    trace: str | None = None           # waveform file (*.fst or *.vcd) of one device step (verilator)
    trace_block: int = 0               # ... of this decoder block
    trace_step: int = 0                # ... and this step run of it (0-based)
    # {id(q_proj.weight): (x, y)} from calibrate.capture_model, or a calibrate.ModelCalibration
    # (offload()), which captures again after the weights change
    calibration: dict | calibrate.ModelCalibration | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, got {self.weights!r}")
        # frozen: resolved fields are set with object.__setattr__
        object.__setattr__(self, "config", with_clock(self.config, self.clock_mhz))
        object.__setattr__(self, "clock_mhz", self.config.clock_mhz)
        if not isinstance(self.link, HostLink):
            raise ValueError(f"link must be a hw_offload.cost.HostLink, got {self.link!r}")
        if self.trace is not None:
            if self.target != "verilator":
                raise ValueError("trace writes a waveform of the Verilator simulation; it needs "
                                 f"target='verilator', got {self.target!r}")
            from .driver import trace_variant     # FST or VCD build, by the file's extension
            object.__setattr__(self, "variant", trace_variant(self.trace))   # frozen
            if self.trace_block < 0 or self.trace_step < 0:
                raise ValueError(f"trace_block and trace_step must be >= 0, got "
                                 f"{self.trace_block}, {self.trace_step}")


@dataclass
class OffloadedBlock:
    layer: int
    float_layer: torch.nn.Module     # a v1 DecoderLayer holding a copy of the weights below
    qb: QuantizedBlock
    theta: float
    head_dim: int
    eps: float
    params: dict[str, torch.Tensor]   # the model's own weight tensors ("self_attn.q_proj.weight")
    versions: dict[str, tuple] = field(default_factory=dict)   # of params when qb was made
    on_host: str | None = None       # set after a runtime failure
    history: torch.Tensor | None = None   # float inputs by position, for the host fallback

    def __post_init__(self):
        self.versions = self.versions or calibrate.tensor_versions(self.params)

    @property
    def source_q(self) -> torch.Tensor:
        """The model's q_proj weight: identifies the block across graphs."""
        return self.params["self_attn.q_proj.weight"]

    def changed(self) -> list[str]:
        """Names of the weights written (in place or replaced) since this block was quantized."""
        now = calibrate.tensor_versions(self.params)
        return [k for k, v in now.items() if v != self.versions.get(k)]


@dataclass
class OffloadContext:
    """Device state shared by every graph compiled from one model (prefill and decode graphs)."""

    options: RtlOptions
    blocks: list[OffloadedBlock] = field(default_factory=list)
    session: ModelSession | None = None
    report: str = ""
    capacity_from: str = "the backend's max_seq_len option"   # where options.max_seq_len came from
    capture: dict | None = None      # {slot: (x, y)} while requantize's float pass runs
    max_len_given: bool = False      # max_seq_len came from the options (not a KV cache's length)
    wave: WaveRequest | None = None  # the trace option; kept here so a replanned session skips it

    # ---------------- device ----------------
    def _wave_request(self):
        """The ``trace`` option as a session's WaveRequest (one per context, so a replanned
        session does not write it twice), or None."""
        o = self.options
        if o.trace is None:
            return None
        if self.wave is None:
            self.wave = WaveRequest(o.trace, o.trace_block, o.trace_step)
        return None if self.wave.written else self.wave

    def ensure_session(self, batch: int, past: int, seq: int, keep_kv: bool) -> ModelSession:
        """A session holding ``batch`` sequences up to position ``past + seq``; raises if it
        cannot fit. A longer plan is made only for a step that starts a sequence (past 0):
        replanning moves the KV regions, so a sequence in progress keeps its plan and a step
        beyond it is refused by ``check_request`` with the capacity named."""
        want_len = max(past + seq, self.options.max_seq_len or 0)
        s = self.session
        if s is None or (s.max_seq_len < want_len and not (keep_kv and past > 0)):
            if s is not None:
                s.close()
            self.session = s = ModelSession([b.qb for b in self.blocks], want_len, batch,
                                            self.options.target, self.options.weights,
                                            variant=self.options.variant,
                                            config=self.options.config,
                                            max_cycles=self.options.max_cycles,
                                            progress=self.options.progress,
                                            trace=self._wave_request())
            s.capacity_from = (f"set by {self.capacity_from}" if want_len == self.options.max_seq_len
                               else "the longest step so far; no max_seq_len option or KV cache "
                                    "asked for more")
            log.info("rtl: SRAM plan %s", s.plan.summary())
        return s

    def plan_for_cache(self, cache_len: int | None) -> None:
        """A graph with a KV cache of ``cache_len`` positions: plan later sequences for it,
        unless max_seq_len was given as an option (then that is the capacity)."""
        if cache_len and not self.max_len_given and cache_len > (self.options.max_seq_len or 0):
            self.options = replace(self.options, max_seq_len=cache_len)
            self.capacity_from = f"the length of the caller's KV cache ({cache_len})"

    def requantize(self, calibration: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """New weights: rebuild every block's float copy from the model's current tensors and
        quantize it again on ``calibration`` ({slot: (x, y)} recorded with the new weights).
        The device session (weight images, KV caches) is dropped first; the next call makes
        one. A block is marked current (``versions``) only once its new qb is in place, so a
        failure part-way leaves the rest to be found changed again on the next call."""
        for b in self.blocks:            # refuse NaN / inf weights before anything changes
            _require_finite_weights(b.layer, b.params)
        if self.session is not None:
            self.session.close()
            self.session = None
        for slot, b in enumerate(self.blocks):
            versions = calibrate.tensor_versions(b.params)
            layer, cfg = calibrate.rebuild_layer(b.params, b.head_dim, b.eps, b.theta,
                                                 self.options.max_seq_len or 1)
            xy = calibration.get(slot)
            if xy is None and not b.on_host:
                b.on_host = "no calibration data reached this block after its weights changed"
                log.warning("rtl: layer %d runs on the host from now on: %s", b.layer, b.on_host)
            elif not b.on_host:
                b.qb = calibrate.quantize_calibrated(layer, cfg, xy[0],
                                                   per_channel=self.options.per_channel)
            b.float_layer, b.versions, b.history = layer, versions, None

    def run(self, slot: int, x: torch.Tensor, past: int, keep_kv: bool) -> torch.Tensor:
        """x: float (B, S, hidden) at positions past..past+S-1 -> block output, same shape/dtype.
        keep_kv: the caller has a KV cache (decode follows), so the device keeps one too."""
        blk, (bsz, seq, _) = self.blocks[slot], x.shape
        if self.capture is not None:      # re-calibration pass (requantize): float, recorded
            y = blk.float_layer(x.float(), *calibrate.rotary(_cfg(blk), 0, seq)).to(x.dtype)
            self.capture[slot] = (x.detach().clone(), y.detach().clone())
            return y
        if blk.on_host:
            self._remember(blk, x, past)
            return self._host(blk, past, seq).to(x.dtype)
        session = self.ensure_session(bsz if keep_kv else 0, past, seq, keep_kv)
        session.check_request(slot, bsz, seq, past, keep_kv)   # bad requests raise here, nothing sent
        # NaN / inf would round to ordinary int8 codes: ValueError naming the block and tensor
        x_q = quantize(x.detach().double().numpy(), blk.qb.act_scales["x"],
                       f"layer {blk.layer}'s input hidden state x (the offloaded block's input)")
        self._remember(blk, x, past)
        try:
            y_q = session.run_block(slot, x_q, past, keep_kv)
        except KeyboardInterrupt:
            raise
        except Exception as exc:   # noqa: BLE001 - any device failure: host fallback, loudly
            blk.on_host = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"rtl backend: layer {blk.layer} failed on the {self.options.target} "
                          f"target ({blk.on_host}); running it on the host in float from now on",
                          RuntimeWarning, stacklevel=2)
            return self._host(blk, past, seq).to(x.dtype)
        return torch.from_numpy(y_q.astype(np.float32) * np.float32(blk.qb.act_scales["y"])).to(x.dtype)

    def _remember(self, blk: OffloadedBlock, x: torch.Tensor, past: int) -> None:
        bsz, seq, hidden = x.shape
        h = blk.history
        if h is None or h.shape[0] < bsz or h.shape[1] < past + seq:
            grown = torch.zeros(max(bsz, h.shape[0] if h is not None else 0),
                                max(past + seq, h.shape[1] if h is not None else 0), hidden)
            if h is not None:
                grown[:h.shape[0], :h.shape[1]] = h
            blk.history = h = grown
        h[:bsz, past:past + seq] = x.detach().float()

    def _host(self, blk: OffloadedBlock, past: int, seq: int) -> torch.Tensor:
        """The float block over every position so far (it has no KV cache of its own)."""
        bsz = blk.history.shape[0]
        x = blk.history[:, :past + seq]
        cos, sin = calibrate.rotary(_cfg(blk), 0, past + seq)
        with torch.no_grad():
            return blk.float_layer(x, cos, sin)[:bsz, past:]

    def records(self):
        return self.session.records if self.session else []

    def price(self, records) -> CallCost:
        """``cost.total_cost`` of device records at the configuration's clock and the ``link``."""
        return total_cost(records, self.options.config, self.options.link)


def _cfg(blk: OffloadedBlock):
    return calibrate.TinyLlamaConfig(vocab_size=1, hidden_size=blk.qb.hidden, num_layers=1,
                                     num_heads=blk.qb.heads, num_kv_heads=blk.qb.kv_heads,
                                     intermediate_size=blk.qb.intermediate, rope_theta=blk.theta)


class RtlBlock(torch.nn.Module):
    """The call_module node that replaces one decoder block in the graph."""

    def __init__(self, ctx: OffloadContext, slot: int, keep_kv: bool):
        super().__init__()
        self.ctx, self.slot, self.keep_kv = ctx, slot, keep_kv

    def forward(self, x: torch.Tensor, past) -> torch.Tensor:
        # x is (B, S, hidden); the host fallback may hold more sequences: slice to the caller's
        return self.ctx.run(self.slot, x, int(past), self.keep_kv)[:x.shape[0]]


# (id of the calibration, id of a block's q_proj weight) -> the model's accelerator state. It
# outlives torch._dynamo.reset(); OffloadedBlock.changed() keeps it from outliving the weights.
_CONTEXTS: dict[tuple[int, int], OffloadContext] = {}


def context_of(model: torch.nn.Module) -> OffloadContext | None:
    """The accelerator state of the model most recently compiled with the rtl backend."""
    ids = {id(p) for p in model.parameters()}
    found = [ctx for (_, pid), ctx in _CONTEXTS.items() if pid in ids]
    return found[-1] if found else None


class _Compiled:
    """What the backend returns: calibrates on the first call if needed, then runs the graph
    with the supported blocks replaced."""

    def __init__(self, gm: GraphModule, example_inputs, options: RtlOptions):
        self.gm, self.options = gm, options
        self.placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.groups = find_blocks(gm)
        self.final = None
        self.ctx: OffloadContext | None = None
        # a prefill from position 0 (the start position is the constant 0 in every block)
        self.prefill = all(isinstance(g.past, int) and g.past == 0 for g in self.groups)

    def __call__(self, *args):
        if self.final is None:
            self.final = self._finalize(args)
        if self.ctx is not None:
            self._requantize_if_changed(args)
        return self.final(*args)

    def _requantize_if_changed(self, args) -> None:
        """The quantized blocks were made from the weights as they were then; if any weight was
        written since (version counter, storage, shape or dtype differ), quantize again before
        running: on a prefill from position 0 with the calibration the blocks were made with
        (offload(): its token ids through the model; otherwise this call's inputs); in the
        middle of a sequence refuse, since the device KV caches hold the old weights' K and V."""
        ctx = self.ctx
        changed = [f"layer {b.layer} {name}" for b in ctx.blocks for name in b.changed()]
        if not changed:
            return
        what = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        if not self.prefill:
            raise RuntimeError(f"rtl backend: weights changed after they were quantized ({what}) in "
                               "the middle of a sequence: the device KV caches hold keys and values "
                               "of the old weights. Start the sequence again (a prefill from "
                               "position 0 quantizes the new weights)")
        log.info("rtl: weights changed since they were quantized (%s); quantizing again", what)
        if isinstance(self.options.calibration, calibrate.ModelCalibration):
            io = self.options.calibration.get()
            calibration = {i: io.get(id(b.source_q)) for i, b in enumerate(ctx.blocks)}
        else:   # this prefill is the calibration pass, as on the first call: float, recorded
            for b in ctx.blocks:
                b.float_layer, _ = calibrate.rebuild_layer(b.params, b.head_dim, b.eps, b.theta, 1)
            safe = [a.clone() if isinstance(a, torch.Tensor) and not isinstance(a, torch.nn.Parameter)
                    else a for a in args]     # the caller's KV cache is not written
            ctx.capture = {}
            try:
                with torch.no_grad():
                    self.final(*safe)
                calibration = ctx.capture
            finally:
                ctx.capture = None
        calibration = {i: xy for i, xy in calibration.items() if xy is not None}
        ctx.requantize(calibration)

    def _value(self, node, args):
        return args[self.placeholders.index(node)]

    def _key(self, g: BlockGroup, args) -> tuple[int, int]:
        """Identity of a block across the graphs of one compiled model: its q_proj weight
        tensor, and the calibration it was (or will be) quantized with."""
        return id(self.options.calibration), id(self._value(g.params["self_attn.q_proj.weight"], args))

    def _finalize(self, args):
        groups = [g for g in self.groups if g.reason is None]
        if not groups:
            log.warning("rtl: no block offloaded; the whole graph runs on the host\n%s",
                        describe(self.groups))
            return self.gm.forward
        ctx = _CONTEXTS.get(self._key(groups[0], args))
        if ctx is None:
            ctx = self._new_context(groups, args)
            for b in ctx.blocks:
                _CONTEXTS[(id(self.options.calibration), id(b.source_q))] = ctx
        ctx.plan_for_cache(_cache_len(self.placeholders, args))
        self.ctx = ctx
        slot_of = {(id(self.options.calibration), id(b.source_q)): i for i, b in enumerate(ctx.blocks)}
        replaced: dict = {}   # a block output -> the call that now produces it (next block's x)
        for g in groups:
            slot = slot_of.get(self._key(g, args))
            if slot is None:
                g.reason = g.reason or "rejected when this model was calibrated"
                continue
            _replace(self.gm, g, RtlBlock(ctx, slot, g.uses_cache), replaced)
        self.gm.recompile()
        ctx.report = describe(self.groups)
        log.info("rtl backend (%s target), graph with %d blocks:\n%s", ctx.options.target,
                 len(self.groups), describe(self.groups))
        return self.gm.forward

    def _new_context(self, groups: list[BlockGroup], args) -> OffloadContext:
        opts = self.options
        theta_src = next((n for n in self.placeholders if "inv_freq" in n.name), None)
        max_len = opts.max_seq_len or _cache_len(self.placeholders, args)
        if opts.calibration is not None:
            io = opts.calibration.get() if isinstance(opts.calibration, calibrate.ModelCalibration) \
                else opts.calibration
            lookup = lambda g: io.get(self._key(g, args)[1])  # noqa: E731
        else:
            if any(not isinstance(g.past, int) or g.past != 0 for g in groups):
                raise RuntimeError("rtl backend: the first call must be a prefill from position 0 "
                                   "(it is the calibration pass), or calibrate with "
                                   "hw_offload.offload(model, calibration=ids)")
            io = calibrate.capture_graph(self.gm, groups, args)
            lookup = lambda g: io.get(g.layer)  # noqa: E731
        ctx = OffloadContext(replace(opts, calibration=None, max_seq_len=max_len),
                             max_len_given=opts.max_seq_len is not None)
        if opts.max_seq_len is None and max_len:
            ctx.capacity_from = f"the length of the caller's KV cache ({max_len})"
        for g in groups:
            xy = lookup(g)
            if theta_src is None or xy is None:
                g.reason = "no rotary inv_freq buffer in the graph" if theta_src is None else \
                    "no calibration data reached this block"
                continue
            params = {k: self._value(n, args) for k, n in g.params.items()}
            _require_finite_weights(g.layer, params)
            theta = calibrate.rope_theta(self._value(theta_src, args), g.head_dim)
            layer, cfg = calibrate.rebuild_layer(params, g.head_dim, g.eps, theta,
                                                 max_len or xy[0].shape[1])
            g.reason = calibrate.semantic_mismatch(layer, cfg, *xy)
            if g.reason is None:
                qb = calibrate.quantize_calibrated(layer, cfg, xy[0], per_channel=opts.per_channel)
                ctx.blocks.append(OffloadedBlock(g.layer, layer, qb, theta, g.head_dim, g.eps, params))
        return ctx


def _require_finite_weights(layer: int, params: dict[str, torch.Tensor]) -> None:
    """ValueError naming the layer and weight if one holds NaN or inf (int8 cannot hold them)."""
    for name, t in params.items():
        require_finite(t.detach().float().cpu().numpy(), f"layer {layer} weight {name}")


def _cache_len(placeholders, args) -> int | None:
    for n, a in zip(placeholders, args):
        if "cache" in n.name and isinstance(a, torch.Tensor) and a.dim() == 4:
            return int(a.shape[2])
    return None


def _replace(gm: GraphModule, g: BlockGroup, module: RtlBlock, replaced: dict) -> None:
    """Swap the group's nodes for one call_module node taking (x, past)."""
    name = f"rtl_block_{g.layer}"
    gm.add_submodule(name, module)
    with gm.graph.inserting_before(g.y):
        call = gm.graph.call_module(name, (replaced.get(g.x, g.x), g.past))
    call.meta.update(g.y.meta)
    g.y.replace_all_uses_with(call)
    replaced[g.y] = call
    for n in reversed(g.nodes):
        if not n.users:
            gm.graph.erase_node(n)
    gm.graph.lint()


def rtl_backend(gm: GraphModule, example_inputs, options: dict | None = None):
    """The torch.compile backend. ``options``: the fields of ``RtlOptions``."""
    opts = options if isinstance(options, RtlOptions) else RtlOptions(**(options or {}))
    return _Compiled(gm, example_inputs, opts)


def offload(model: torch.nn.Module, calibration: torch.Tensor | None = None, *,
            calibration_seed: int = 0, **options) -> torch.nn.Module:
    """``torch.compile(model, backend="rtl")`` with calibration done here, eagerly (and again,
    on the same token ids, if the model's weights change later).

    calibration: int64 token ids (B, S) for the calibration pass; default: 2 sequences of
    ``max_seq_len`` random tokens (generator seeded with ``calibration_seed``).
    options: the fields of RtlOptions (target, weights, clock_mhz, link, progress, ...).
    """
    cfg = model.config
    if calibration is None:
        g = torch.Generator().manual_seed(calibration_seed)
        calibration = torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)
    options.setdefault("max_seq_len", cfg.max_seq_len)
    source = calibrate.ModelCalibration(model, calibration)
    source.get()          # the float pass now; again only if the weights change
    opts = RtlOptions(calibration=source, **options)
    return torch.compile(model, backend=lambda gm, ex: rtl_backend(gm, ex, opts), dynamic=None)


def _register() -> None:
    """Register "rtl" with Dynamo unless the installed entry point will (a second registration
    under the same name is an error in torch._dynamo)."""
    from importlib.metadata import entry_points

    from torch._dynamo.backends.registry import _COMPILER_FNS, register_backend
    if "rtl" in _COMPILER_FNS:
        return
    if any(ep.name == "rtl" for ep in entry_points(group="torch_dynamo_backends")):
        return
    register_backend(rtl_backend, name="rtl")


_register()
