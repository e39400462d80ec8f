"""The speedup table's ``rtl`` rows (and benchmarks/hw/bench_offload): version 1 compiled with
``torch.compile(model, backend="rtl")``, exactly what users run, with the session's records
priced by ``hw_offload.cost.total_cost`` at the accelerator configuration's clock
(``hw_offload.configs``; default chip16) and the backend's ``link``.

Every number is an ESTIMATE at a stated clock and host link, built from counted quantities:
cycles counted by the Verilator target (that configuration's build) in a real run of the whole
batch, or by the cycle model over the golden model's run (target "cycle_model"), bytes and
transactions counted by the driver in that run. The decoder blocks run on the accelerator;
the embedding, final norm and LM head run on the host and are not included.

The steps are the harness's (benchmarks/workloads.py): prefill of ``seq_len`` tokens from
position 0; decode of one token at position seq_len-1 after a prefill of seq_len-1 tokens into
the KV cache. The prefill row runs without a KV cache (a prompt-only forward), so a batch whose
KV caches do not fit the activation SRAM can still be priced for prefill.
"""
from __future__ import annotations

import torch

from benchmarks.hw.cycle_breakdown import breakdown, sum_counters, summary
from hw_offload.build import VerilatorNotFoundError
from hw_offload.configs import AccelConfig, with_clock
from hw_offload.cost import HostLink
from hw_offload.sram_plan import SramFitError

MODES = ("train", "prefill", "decode")


def compile_rtl(model: torch.nn.Module, *, target: str = "verilator",
                config: AccelConfig | str | None = None, clock_mhz: float | None = None,
                link: HostLink = HostLink(), weights: str = "auto",
                calibration_seed: int = 0) -> torch.nn.Module:
    """``torch.compile(model, backend="rtl")`` with the options the table is priced at, on
    accelerator configuration ``config`` (name or AccelConfig; default chip16). ``clock_mhz``:
    see ``hw_offload.configs.with_clock`` (None: the configuration's clock).

    Calibrated eagerly (the backend's ``calibration`` option, as ``hw_offload.offload`` does) on
    2 sequences of max_seq_len random tokens, so any step may come first: the lazy calibration
    on the first call needs a prefill from position 0 that Dynamo has not made symbolic.
    """
    from hw_offload import calibrate
    from hw_offload.backend import rtl_backend  # noqa: F401  (registers "rtl" with Dynamo)
    # A fresh Dynamo state, as in a user's process: graphs compiled earlier in this process (other
    # versions, other presets) count against the recompile limit of the same model code, and a
    # graph split there would leave blocks on the host (estimate_step then raises).
    torch._dynamo.reset()
    cfg = model.config
    g = torch.Generator().manual_seed(calibration_seed)
    ids = torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)
    return torch.compile(model, backend="rtl", options={
        "target": target, "config": config, "clock_mhz": clock_mhz, "link": link, "weights": weights,
        "max_seq_len": cfg.max_seq_len, "progress": False,
        "calibration": calibrate.capture_model(model, ids)})


def _run_and_collect(compiled, call):
    """Run ``call()`` and return (the model's backend context, the device records it added)."""
    from hw_offload.backend import context_of
    ctx = context_of(compiled)
    before = (ctx.session, len(ctx.records())) if ctx else (None, 0)
    with torch.no_grad():
        call()
    ctx = context_of(compiled)
    if ctx is None or ctx.session is None:
        raise RuntimeError("the rtl backend did not run this model (no offload context)")
    records = ctx.records()
    return ctx, list(records[before[1]:] if ctx.session is before[0] else records)


def estimate_step(compiled: torch.nn.Module, mode: str, batch_size: int, seq_len: int,
                  seed: int = 0) -> dict:
    """Run one ``mode`` step ("prefill" or "decode") of ``compiled`` (from ``compile_rtl``) on
    random token ids and price its device records. Raises SramFitError when the batch's KV
    caches cannot be held, ValueError for bad arguments, RuntimeError when a block did not run
    on the accelerator (then its time would be missing)."""
    cfg = compiled.config
    if mode not in ("prefill", "decode"):
        raise ValueError(f"mode must be prefill or decode, got {mode!r}")
    if not 1 <= seq_len <= cfg.max_seq_len or batch_size < 1:
        raise ValueError(f"need 1 <= seq_len <= max_seq_len ({cfg.max_seq_len}) and batch >= 1, "
                         f"got seq_len {seq_len}, batch {batch_size}")
    if mode == "decode" and seq_len < 2:
        raise ValueError("decode needs seq_len >= 2 (a prompt and the decoded token)")
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, seq_len), generator=g)
    if mode == "prefill":
        ctx, records = _run_and_collect(compiled, lambda: compiled(ids))
    else:
        cache = compiled.new_cache(batch_size)   # the prompt's prefill fills the device KV cache
        _run_and_collect(compiled, lambda: compiled(ids[:, :-1], cache=cache))
        ctx, records = _run_and_collect(compiled, lambda: compiled(ids[:, -1:], cache=cache))
    on_host = [f"layer {b.layer}: {b.on_host}" for b in ctx.blocks if b.on_host]
    if len(ctx.blocks) != cfg.num_layers or on_host or not records:
        raise RuntimeError(f"not every decoder block ran on the accelerator ({len(ctx.blocks)} of "
                           f"{cfg.num_layers} offloaded; {'; '.join(on_host) or 'no failures'}); "
                           f"backend report:\n{ctx.report}")
    opts = ctx.options
    total = ctx.price(records)
    return {"mode": mode, "batch": batch_size, "seq_len": seq_len,
            "tokens_per_step": batch_size * (seq_len if mode == "prefill" else 1),
            "target": opts.target, "config": opts.config.to_dict(), "clock_mhz": opts.clock_mhz,
            "link": opts.link.label(), "unit_cycles": unit_cycles(records),
            "plan": ctx.session.plan.summary(),
            "per_block": [ctx.price([r for r in records if r.block == i]).to_dict()
                          for i in range(len(ctx.blocks))],
            "step": total.to_dict(), "device_runs": len(records),
            "setup_weight_load": ctx.price(ctx.session.setup_records).to_dict(),
            "blocks": [b.qb for b in ctx.blocks]}


def unit_cycles(records) -> dict | None:
    """Counted cycles of ``records`` summed by unit, with each unit's utilization and the split
    by how many units were busy (``benchmarks.hw.cycle_breakdown.breakdown`` of
    ``sum_counters``: every run's set checked), or None when the target counts no cycles
    (golden)."""
    if not records or records[0].counters.cycles is None:
        return None
    return breakdown(sum_counters(r.counters for r in records))


def estimate_rows(preset: str, modes: list[str], state_dict: dict, batch_size: int, seq_len: int,
                  *, config: AccelConfig | str | None = None, clock_mhz: float | None = None,
                  link: HostLink = HostLink(), target: str = "verilator") -> list[dict]:
    """One row per mode for the speedup table, on accelerator configuration ``config`` (name or
    AccelConfig; default chip16); every number is estimated."""
    from version1_baseline import TinyLlama, get_preset
    accel = with_clock(config, clock_mhz)     # a bad name or clock raises before any work
    clock_mhz = accel.clock_mhz
    model = TinyLlama.from_hf_state_dict(get_preset(preset), state_dict).eval()
    compiled = compile_rtl(model, target=target, config=accel, link=link)
    rows = []
    for mode in modes:
        base = {"mode": mode, "clock_mhz": clock_mhz, "target": target, "config": accel.name,
                "estimated": True,
                "median_ms": None, "compute_ms": None, "transfer_ms": None, "tokens_per_s": None}
        if mode == "train":
            rows.append({**base, "status": "n/a", "detail": "the accelerator runs inference only "
                         "(int8 forward pass, no backward pass or optimizer)"})
            continue
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        try:
            est = estimate_step(compiled, mode, batch_size, seq_len)
        except (SramFitError, VerilatorNotFoundError, ImportError) as exc:
            # Cannot run here (does not fit, or no simulator); anything else is a real failure
            # and propagates, so the harness reports it as ERROR rather than n/a.
            rows.append({**base, "status": "n/a", "detail": f"{type(exc).__name__}: {exc}"})
            continue
        step, units = est["step"], est["unit_cycles"]
        total = step["total_s"]
        rows.append({**base, "status": "ok",
                     "unit_cycles": units,
                     "detail": (f"estimated at {clock_mhz:g} MHz, {link.label()}; accelerator "
                                f"configuration {accel.name}; cycles counted by {target} running torch.compile(backend=\"rtl\") on batch "
                                f"{batch_size}; weights {est['plan']['weights']}; decoder blocks "
                                "only (embedding, final norm, LM head on the host not included); "
                                + ("no cycles counted" if units is None else summary(units))),
                     "median_ms": total * 1e3, "compute_ms": step["compute_s"] * 1e3,
                     "transfer_ms": step["link_s"] * 1e3,
                     "tokens_per_s": est["tokens_per_step"] / total})
    return rows
