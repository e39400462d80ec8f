"""Estimated accelerator time for the speedup table's ``rtl`` row (and benchmarks/hw).

Every number is an ESTIMATE at a stated clock and host link, built from counted quantities:
cycles counted by the Verilator target in a real run, bytes and transactions counted by the
driver in that run (cost.py turns them into time). The decoder blocks run on the accelerator;
the embedding, final norm and LM head run on the host and are not included.

Batch: sequences run one after another on the accelerator, and its timing does not depend on
the data (fixed-latency units; tests/test_cost.py checks it), so one sequence is simulated and
its step runs are counted ``batch`` times; streamed weight loads happen once per block per
step and are counted once.
"""
from __future__ import annotations

import numpy as np
import torch

from . import calibrate
from .cost import ZERO, HostLink, call_cost
from .isa import HwConfig
from .model_session import ModelSession, plan_blocks
from .quant import quantize
from .build import VerilatorNotFoundError
from .sram_plan import SramFitError

MODES = ("train", "prefill", "decode")


def quantized_blocks(model, calibration: torch.Tensor) -> list:
    """Quantize every decoder layer of a v1 model with static scales from ``calibration`` ids."""
    io = calibrate.capture_model(model, calibration)
    return [calibrate.quantize_calibrated(layer, model.config, io[id(layer.self_attn.q_proj.weight)][0])
            for layer in model.model.layers]


def default_calibration(cfg, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)


def estimate_model(model, mode: str, batch_size: int, seq_len: int, *, target: str = "verilator",
                   clock_mhz: float = 200.0, link: HostLink = HostLink(), weights: str = "auto",
                   blocks: list | None = None, seed: int = 0) -> dict:
    """Run one sequence of ``mode`` ("prefill": seq_len tokens from position 0; "decode": one
    token at position seq_len-1 after a prefill of seq_len-1) and price it. Raises SramFitError
    when the batch's KV caches cannot be held, ValueError for bad arguments."""
    cfg = model.config
    if mode not in ("prefill", "decode"):
        raise ValueError(f"mode must be prefill or decode, got {mode!r}")
    if not 1 <= seq_len <= cfg.max_seq_len or batch_size < 1:
        raise ValueError(f"need 1 <= seq_len <= max_seq_len ({cfg.max_seq_len}) and batch >= 1, "
                         f"got seq_len {seq_len}, batch {batch_size}")
    if mode == "decode" and seq_len < 2:
        raise ValueError("decode needs seq_len >= 2 (a prompt and the decoded token)")
    blocks = blocks or quantized_blocks(model, default_calibration(cfg, seed))
    keep_kv = mode == "decode"
    # the plan for the requested batch decides fit (raises with the shortfall) ...
    plan_blocks(blocks, HwConfig(), cfg.max_seq_len, batch_size if keep_kv else 0, weights)
    # ... the run itself simulates one sequence
    session = ModelSession(blocks, cfg.max_seq_len, 1 if keep_kv else 0, target, weights,
                           progress=False)
    try:
        g = torch.Generator().manual_seed(seed + 1)
        ids = torch.randint(0, cfg.vocab_size, (1, seq_len), generator=g)
        with torch.no_grad():
            x = model.model.embed_tokens(ids).double().numpy()
        if mode == "decode":
            start = len(session.records)
            _through(session, blocks, x[:, :-1], 0, keep_kv=True)
            del session.records[start:]
            x, past = x[:, -1:], seq_len - 1
        else:
            past = 0
        start = len(session.records)
        _through(session, blocks, x, past, keep_kv)
        step = session.records[start:]
    finally:
        session.close()
    clock = clock_mhz * 1e6
    total, per_block = ZERO, []
    for i in range(len(blocks)):
        cost = ZERO
        for r in step:
            if r.block == i:
                c = call_cost(r.counters, r.link, clock, link)
                for _ in range(batch_size if r.kind == "step" else 1):
                    cost = cost + c
        per_block.append(cost)
        total = total + cost
    tokens = batch_size * (seq_len if mode == "prefill" else 1)
    return {"mode": mode, "batch": batch_size, "seq_len": seq_len, "tokens_per_step": tokens,
            "target": target, "clock_mhz": clock_mhz, "link": link.label(),
            "plan": session.plan.summary(), "per_block": [c.to_dict() for c in per_block],
            "step": total.to_dict(), "runs_per_sequence": len(step),
            "setup_weight_load": sum((call_cost(r.counters, r.link, clock, link) for r in session.setup_records),
                                     ZERO).to_dict()}


def _through(session, blocks, x, past, keep_kv):
    """The float hidden state (1, S, hidden) through every block on the device, dequantized
    and requantized on the host between blocks exactly as the backend does."""
    for i, qb in enumerate(blocks):
        y_q = session.run_block(i, quantize(x, qb.act_scales["x"]), past, keep_kv)
        x = y_q.astype(np.float64) * qb.act_scales["y"]
    return x


def estimate_rows(preset: str, modes: list[str], state_dict: dict, batch_size: int, seq_len: int,
                  *, clock_mhz: float = 200.0, link: HostLink = HostLink(),
                  target: str = "verilator") -> list[dict]:
    """One row per mode for the speedup table (see benchmarks); every number is estimated."""
    from version1_baseline import TinyLlama, get_preset
    cfg = get_preset(preset)
    model = TinyLlama.from_hf_state_dict(cfg, state_dict).eval()
    blocks = None
    rows = []
    for mode in modes:
        base = {"mode": mode, "clock_mhz": clock_mhz, "target": target, "estimated": True,
                "median_ms": None, "compute_ms": None, "transfer_ms": None, "tokens_per_s": None}
        if mode == "train":
            rows.append({**base, "status": "n/a", "detail": "the accelerator runs inference only "
                         "(int8 forward pass, no backward pass or optimizer)"})
            continue
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        try:
            blocks = blocks or quantized_blocks(model, default_calibration(cfg))
            est = estimate_model(model, mode, batch_size, seq_len, target=target,
                                 clock_mhz=clock_mhz, link=link, blocks=blocks)
        except (SramFitError, VerilatorNotFoundError, ImportError) as exc:
            # Cannot run here (does not fit, or no simulator); anything else is a real failure
            # and propagates, so the harness reports it as ERROR rather than n/a.
            rows.append({**base, "status": "n/a", "detail": f"{type(exc).__name__}: {exc}"})
            continue
        step = est["step"]
        total = step["total_s"]
        rows.append({**base, "status": "ok",
                     "detail": (f"estimated at {clock_mhz:g} MHz, {link.label()}; cycles counted by "
                                f"{target} for 1 sequence x batch {batch_size} (timing is "
                                f"data-independent); weights {est['plan']['weights']}; decoder blocks "
                                "only (embedding, final norm, LM head on the host not included)"),
                     "median_ms": total * 1e3, "compute_ms": step["compute_s"] * 1e3,
                     "transfer_ms": step["link_s"] * 1e3,
                     "tokens_per_s": est["tokens_per_step"] / total})
    return rows
