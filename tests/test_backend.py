"""torch.compile backend "rtl": partitioning, accuracy against float v1, golden == Verilator,
host fallback, KV-cache decode and greedy generation.

Seeds: one fixed plus one fresh per run (HW_TEST_SEED=<n> replays; the seed is in the test id).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hw_offload.backend as backend
from hw_offload.model_session import ModelSession
from hw_offload.quant import quantize
from hw_offload.testing import seeds
from version1_baseline import TinyLlama, get_preset
from version1_baseline.generate import generate

# Measured on this machine (golden target, unit-scale weights, seeds 0, 1 and fresh ones):
# chip16 min cosine over positions 0.9979-0.9993, top-1 0.94-1.00; tiny (4 blocks, 45 tokens)
# min cosine 0.9960-0.9962, top-1 0.80-0.91. Bounds leave a margin for other seeds.
# (min over positions of the logits' cosine, top-1 agreement). From a sweep over 120 (chip16)
# and 12 (tiny) seeds: chip16 cosine >= 0.9486 (median 0.9977), top-1 >= 0.75; tiny cosine
# >= 0.9949, top-1 >= 0.844. Fresh seeds every run, so the bounds sit below the worst case.
BOUNDS = {"chip16": (0.92, 0.62), "tiny": (0.99, 0.75)}
EVAL_LEN = {"chip16": 16, "tiny": 45}   # tiny: an odd length, not a multiple of N


def make_model(cfg, seed: int) -> TinyLlama:
    """v1 model with unit-scale weights (std 1/sqrt(fan_in)) so every block changes the output."""
    torch.manual_seed(seed)
    model = TinyLlama(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed" in name:
                p.normal_(0, 1)
            elif p.dim() == 2:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
            else:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    return model


def agreement(ref: torch.Tensor, got: torch.Tensor) -> tuple[float, float]:
    """(min cosine over positions, top-1 agreement) of logits (B, S, V)."""
    cos = F.cosine_similarity(ref.flatten(0, 1), got.flatten(0, 1), dim=-1).min()
    top1 = (ref.argmax(-1) == got.argmax(-1)).float().mean()
    return float(cos), float(top1)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("seed", seeds(3))
@pytest.mark.parametrize("preset", ["chip16", "tiny"])
def test_backend_offloads_every_block_and_tracks_float(preset, seed, record_property):
    cfg = get_preset(preset)
    model = make_model(cfg, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    calib = torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)
    ids = torch.randint(0, cfg.vocab_size, (1, EVAL_LEN[preset]), generator=g)   # not the calibration
    with torch.no_grad():
        ref = model(ids)
        got = backend.offload(model, calibration=calib)(ids)
    ctx = backend.context_of(model)
    assert [b.layer for b in ctx.blocks] == list(range(cfg.num_layers))
    assert "on the host" not in ctx.report, ctx.report
    assert all(r.kind in ("step", "weights") for r in ctx.records()) and ctx.records()
    cos, top1 = agreement(ref, got)
    record_property("min_cosine", cos)
    record_property("top1", top1)
    print(f"{preset} seed {seed}: min cosine {cos:.5f} top-1 {top1:.3f}")
    min_cos, min_top1 = BOUNDS[preset]
    assert cos >= min_cos and top1 >= min_top1, (cos, top1)


def test_torch_compile_by_name_calibrates_on_first_call(caplog):
    cfg = get_preset("chip16")
    model = make_model(cfg, 7)
    ids = torch.randint(0, cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(7))
    with caplog.at_level("INFO", logger="hw_offload"), torch.no_grad():
        got = torch.compile(model, backend="rtl")(ids)
        ref = model(ids)
    assert "layer 0: offloaded to the accelerator" in caplog.text
    cos, top1 = agreement(ref, got)
    assert cos >= BOUNDS["chip16"][0] and top1 >= BOUNDS["chip16"][1]


@pytest.mark.rtl
@pytest.mark.parametrize("preset,length", [("chip16", 16), ("tiny", 21)])
def test_verilator_target_equals_golden_bit_exact(preset, length):
    cfg = get_preset(preset)
    model = make_model(cfg, 3)
    g = torch.Generator().manual_seed(11)
    calib = torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)
    prompt = torch.randint(0, cfg.vocab_size, (1, length), generator=g)
    out = {}
    for target in ("golden", "verilator"):
        torch._dynamo.reset()
        m = backend.offload(model, calibration=calib, target=target, variant="test", progress=False)
        with torch.no_grad():
            logits = m(prompt)
        tokens = generate(m, prompt[:, :length - 3], 3)
        out[target] = (logits, tokens, backend.context_of(model).records())
    assert torch.equal(out["golden"][0], out["verilator"][0])
    assert torch.equal(out["golden"][1], out["verilator"][1])
    cycles = [r.counters.cycles for r in out["verilator"][2]]
    assert all(c and c > 0 for c in cycles)
    assert all(r.counters.cycles is None for r in out["golden"][2])


def test_block_with_unsupported_op_stays_on_host():
    """Layer 1 uses GELU (not in the accelerator's op set); layer 2 scales its MLP by 2 with
    supported ops only (caught by the calibration-time check). Both stay on the host."""
    cfg = get_preset("chip16").replace(num_layers=3)
    model = make_model(cfg, 5)
    mlp1, mlp2 = model.model.layers[1].mlp, model.model.layers[2].mlp
    mlp1.forward = lambda x: mlp1.down_proj(F.gelu(mlp1.gate_proj(x)) * mlp1.up_proj(x))
    mlp2.forward = lambda x: 2 * mlp2.down_proj(F.silu(mlp2.gate_proj(x)) * mlp2.up_proj(x))
    ids = torch.randint(0, cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(ids)
        got = backend.offload(model)(ids)
    ctx = backend.context_of(model)
    assert [b.layer for b in ctx.blocks] == [0]
    assert "layer 1: on the host: unsupported op(s): gelu" in ctx.report
    assert "layer 2: on the host: computes something other than a Llama decoder block" in ctx.report
    assert len({r.block for r in ctx.records()}) == 1     # only block 0 went to the device
    # measured: min cosine 0.985, top-1 1.0 (the doubled MLP of layer 2 amplifies block 0's error)
    cos, top1 = agreement(ref, got)
    assert cos >= 0.97 and top1 >= 0.85, (cos, top1)


@pytest.mark.parametrize("seed", seeds(3))
def test_greedy_generation_equals_golden_target_driven_directly(seed):
    """generate() through the backend (prefill + KV-cache decode) == a loop that drives the
    golden target directly with the same quantized blocks, re-running the whole prefix each
    step (no KV cache at all)."""
    cfg = get_preset("tiny").replace(num_layers=2)
    model = make_model(cfg, seed)
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, cfg.vocab_size, (1, 7), generator=g)
    compiled = backend.offload(model, calibration=torch.randint(0, cfg.vocab_size, (2, 64), generator=g))
    tokens = generate(compiled, prompt, 6)
    qbs = [b.qb for b in backend.context_of(model).blocks]
    session = ModelSession(qbs, cfg.max_seq_len, 0, "golden")
    seq = prompt
    for _ in range(6):
        with torch.no_grad():
            x = model.model.embed_tokens(seq).double().numpy()
            for i, qb in enumerate(qbs):
                x = session.run_block(i, quantize(x, qb.act_scales["x"]), 0, keep_kv=False) \
                    .astype(np.float32) * np.float32(qb.act_scales["y"])
            logits = model.lm_head(model.model.norm(torch.from_numpy(x.astype(np.float32))))
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(tokens, seq), (tokens, seq)


@pytest.mark.parametrize("seed", seeds(2))
def test_kv_steps_equal_one_prefill_bit_exact(seed):
    """A prefill split at random points into prefill + decode steps (each appending to the
    on-device KV cache) reproduces the one-run prefill exactly."""
    cfg = get_preset("chip16").replace(hidden_size=64, num_heads=2, num_kv_heads=1,
                                       intermediate_size=128, max_seq_len=48)   # head_dim 32 > N
    model = make_model(cfg, seed)
    layer, rng = model.model.layers[0], np.random.default_rng(seed)
    x = rng.standard_normal((2, 48, 64))
    cos, sin = model.model.rotary_emb(torch.arange(48))
    from hw_offload.calibrate import quantize_block
    qb = quantize_block(layer, cfg, x, cos, sin)
    x_q = quantize(x[0], qb.act_scales["x"])
    want = ModelSession([qb], 48, 0, "golden").run_block(0, x_q[None], 0, keep_kv=False)[0]
    session = ModelSession([qb], 48, 1, "golden")
    np.testing.assert_array_equal(session.run_block(0, x_q[None], 0)[0], want)
    cuts = sorted(rng.choice(np.arange(1, 48), size=3, replace=False))
    parts = [session.run_block(0, x_q[None, a:b], a)[0] for a, b in zip([0, *cuts], [*cuts, 48])]
    np.testing.assert_array_equal(np.concatenate(parts), want)


def test_runtime_failure_falls_back_to_host_with_warning(monkeypatch):
    cfg = get_preset("chip16")
    model = make_model(cfg, 9)
    ids = torch.randint(0, cfg.vocab_size, (1, 16), generator=torch.Generator().manual_seed(9))
    compiled = backend.offload(model)
    with torch.no_grad():
        compiled(ids)          # session exists and works
        ctx = backend.context_of(model)
        from hw_offload.errors import AcceleratorError

        def broken(max_cycles=None):
            raise AcceleratorError(1, 3, "injected")
        monkeypatch.setattr(ctx.session.device, "run", broken)
        with pytest.warns(RuntimeWarning, match="failed on the golden target.*host in float"):
            got = compiled(ids)
        ref = model(ids)
    assert ctx.blocks[0].on_host
    # the host fallback is the float block: same logits as v1 up to float rounding
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no second warning: it stays on the host
        with torch.no_grad():
            torch.testing.assert_close(compiled(ids), ref, rtol=1e-5, atol=1e-5)


def test_too_large_batch_or_position_raises_before_anything_is_sent():
    cfg = get_preset("tiny")
    model = make_model(cfg, 2)
    compiled = backend.offload(model, calibration=torch.randint(0, cfg.vocab_size, (1, 16)))
    # KV caches of 4 tiny sequences x 4 blocks do not fit the 16384-row activation SRAM
    with pytest.raises(Exception, match="KV caches for batch 4 .* rows short; the largest batch that fits is 1"):
        generate(compiled, torch.zeros(4, 3, dtype=torch.long), 1)
    ctx = backend.context_of(model)
    sent = ctx.session.device.link.copy() if ctx.session else None
    assert sent is None or sent.bytes_to_device == 0
    qbs = [b.qb for b in ctx.blocks]
    session = ModelSession(qbs[:1], 32, 1, "golden")
    before = session.device.link.copy()
    x = np.zeros((1, 8, cfg.hidden_size), dtype=np.int8)
    with pytest.raises(ValueError, match="exceeds the device KV capacity of 32"):
        session.run_block(0, x, 30)
    with pytest.raises(ValueError, match=r"int8 \(batch, seq, 256\)"):
        session.run_block(0, x.astype(np.int16), 0)
    assert session.device.link == before      # nothing was sent


def test_ctrl_c_stops_cleanly_and_leaves_no_half_written_cache(monkeypatch):
    cfg = get_preset("chip16")
    model = make_model(cfg, 4)
    qb = backend.offload(model)
    with torch.no_grad():
        qb(torch.zeros(1, 4, dtype=torch.long))
    session = ModelSession([backend.context_of(model).blocks[0].qb], 16, 2, "golden")
    # 2 x 9 rows exceed one run's scratch (16 rows), so each sequence is its own device run
    x = np.ones((2, 9, 16), dtype=np.int8)
    real, calls = session.device.run, []

    def interrupted(max_cycles=None):
        calls.append(1)
        if len(calls) == 2:      # second sequence of the batch
            raise KeyboardInterrupt
        return real(max_cycles)
    monkeypatch.setattr(session.device, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.run_block(0, x, 0)
    monkeypatch.setattr(session.device, "run", real)
    with pytest.raises(ValueError, match="start again from position 0"):
        session.run_block(0, x[:, :1], 5)
    assert session.run_block(0, x, 0).shape == x.shape    # a new sequence runs


@pytest.mark.rtl
def test_trace_option_writes_the_named_block_step_only(tmp_path):
    """options trace / trace_block / trace_step: one waveform of that block's step, none for a
    step that never runs, and a clear refusal on the golden target (no simulation to trace)."""
    cfg = get_preset("chip16").replace(num_layers=2)
    model = make_model(cfg, 4)
    g = torch.Generator().manual_seed(12)
    calib = torch.randint(0, cfg.vocab_size, (2, cfg.max_seq_len), generator=g)
    prompt = torch.randint(0, cfg.vocab_size, (1, 8), generator=g)
    wave, never = tmp_path / "block1.fst", tmp_path / "never.fst"
    for path, step in ((wave, 0), (never, 99)):
        torch._dynamo.reset()
        m = backend.offload(model, calibration=calib, target="verilator", progress=False,
                            trace=str(path), trace_block=1, trace_step=step)
        with torch.no_grad():
            m(prompt)
    assert wave.is_file() and wave.stat().st_size > 0
    assert not never.exists()
    with pytest.raises(ValueError, match="target='verilator'"):
        backend.RtlOptions(target="golden", trace=str(wave))
