"""Weights resident beyond the weight SRAM: sram_plan.choose_spill moves whole weight matrices
to the top of the activation SRAM, where the GEMMs read them (GEMM_B_FROM_A).

The case it exists for: tiny (2.30 MiB of weight images) on fpga32 (32x32; 16-bit row
addresses cap the weight SRAM at 65536 rows = 2 MiB) at batch 4, weights resident and the
batch-4 KV caches on chip. Golden model only (numpy, no Verilator). References: the same
session with the weights streamed (no spill; bit for bit) and version 1's float layers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hw_offload.calibrate import quantize_model
from hw_offload.configs import get_config
from hw_offload.golden import GoldenAccelerator
from hw_offload.model_session import ModelSession, plan_blocks
from hw_offload.quant import quantize
from hw_offload.sram_plan import SramFitError, choose_spill
from version1_baseline import TinyLlama, get_preset

PROMPT, DECODE, BATCH = 9, 3, 4


def test_choose_spill_frees_enough_with_little_to_spare():
    sizes = [{"a": 4096, "b": 2048, "c": 1024}, {"a": 4096, "b": 2048, "c": 1024}]
    assert choose_spill(0, sizes) == []
    assert choose_spill(4096, sizes) == [(0, "a")]
    got = choose_spill(9792, sizes)            # 4096 + 4096, then the smallest covering 1600
    assert sum(sizes[b][m] for b, m in got) == 10240 and len(set(got)) == len(got)
    assert choose_spill(500, sizes) == [(1, "c")]
    with pytest.raises(SramFitError, match="cannot free 20000"):
        choose_spill(20000, sizes)


@pytest.fixture(scope="module")
def tiny():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (BATCH, PROMPT + DECODE))
    blocks = quantize_model(model, ids)
    # each layer's float input and output over the whole sequence (the layers are causal, so
    # decode outputs at position p must match row p of the full forward)
    body = model.model
    cos, sin = body.rotary_emb(torch.arange(PROMPT + DECODE))
    ios = []
    with torch.no_grad():
        h = body.embed_tokens(ids)
        for layer in body.layers:
            out = layer(h, cos, sin)
            ios.append((h.numpy(), out.numpy()))
            h = out
    return cfg, blocks, ios


def test_tiny_batch4_plans_resident_on_fpga32(tiny):
    cfg, blocks, _ = tiny
    hw = get_config("fpga32").hw()
    plan, layouts, _ = plan_blocks(blocks, hw, cfg.max_seq_len, BATCH, "resident")
    assert plan.resident and plan.batch == BATCH
    assert sum(plan.weight_rows) <= hw.w_rows
    kv_rows = plan.kv_rows_per_block * (len(blocks) * BATCH + 1)
    assert plan.scratch_a == kv_rows <= plan.a_end == hw.a_rows - plan.a_reserved
    spilled = sorted((wl.a_base, wl.a_base + wl.a_rows) for wl in layouts if wl.a_rows)
    assert spilled[0][0] == plan.a_end and spilled[-1][1] == hw.a_rows
    assert all(a[1] == b[0] for a, b in zip(spilled, spilled[1:]))      # packed, no overlap
    assert plan.chunk >= 1
    # without the activation SRAM's help the weights are 9792 rows short of resident
    assert sum(wl.rows + wl.a_rows for wl in layouts) - hw.w_rows == 9792
    # a batch whose KV caches leave no room for the moved matrices: "resident" says both
    with pytest.raises(SramFitError, match="9792 rows .* short.*nor do the weights fit .*"
                                           "10240 more hold weights"):
        plan_blocks(blocks, hw, cfg.max_seq_len, 8, "resident")


def _run(session, ios):
    """Prefill PROMPT tokens then DECODE single-token steps, batch 4, every block on its own
    float input -> per block int8 (BATCH, PROMPT + DECODE, hidden)."""
    out = []
    for i, (x, _) in enumerate(ios):
        x_q = quantize(x, session.blocks[i].act_scales["x"])
        ys = [session.run_block(i, x_q[:, :PROMPT], 0)]
        for t in range(PROMPT, PROMPT + DECODE):
            ys.append(session.run_block(i, x_q[:, t:t + 1], t))
        out.append(np.concatenate(ys, axis=1))
    return out


def _cosine(a, b) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_tiny_batch4_decode_resident_on_fpga32_golden(tiny):
    cfg, blocks, ios = tiny
    hw = get_config("fpga32").hw()
    resident = ModelSession(blocks, cfg.max_seq_len, BATCH, device=GoldenAccelerator(hw),
                            weights="resident", progress=False)
    assert resident.plan.a_reserved > 0 and any(wl.a_at for wl in resident.layouts)
    streamed = ModelSession(blocks, cfg.max_seq_len, BATCH, device=GoldenAccelerator(hw),
                            weights="stream", progress=False)
    got, want = _run(resident, ios), _run(streamed, ios)
    for i, (y, y_ref, (x, y_float)) in enumerate(zip(got, want, ios)):
        np.testing.assert_array_equal(y, y_ref)
        y_hw = y.astype(np.float64) * blocks[i].act_scales["y"]
        # the whole output, and the block's own contribution without the residual skip
        cos, branch = _cosine(y_hw, y_float), _cosine(y_hw - x, y_float - x)
        print(f"block {i}: cosine {cos:.5f}, branch cosine {branch:.5f} against the float layer")
        assert cos >= 0.99 and branch >= 0.99, (i, cos, branch)
    # resident: no weight DMA per call; streamed: one image load per block call, by the
    # call's first step run (its program interleaves the LOADs)
    assert not [r for r in resident.records if r.kind == "weights" or r.loads_weights]
    assert not [r for r in streamed.records if r.kind == "weights"]
    assert len([r for r in streamed.records if r.loads_weights]) == len(blocks) * (1 + DECODE)
