"""cost.py arithmetic (hand-worked), driver byte counts against the tensors actually sent,
SRAM fit report, data-independent timing and the speedup-table rows (benchmarks.rtl_estimate:
version 1 through torch.compile(backend="rtl"), priced by cost.total_cost)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hw_offload.cost import HostLink, call_cost, total_cost
from hw_offload.device_counters import Counters, LinkCounters
from benchmarks.hw import cycle_breakdown as cb
from benchmarks.rtl_estimate import estimate_rows
from hw_offload.calibrate import quantize_model
from hw_offload.compiler import weight_load_program
from hw_offload.isa import HwConfig
from hw_offload.model_session import ModelSession, plan_blocks
from hw_offload.sram_plan import SramFitError
from hw_offload.testing import seeds
from version1_baseline import TinyLlama, get_preset


def test_latency_arithmetic_matches_hand_worked_example():
    # PCIe Gen4: 16 GT/s per lane, 128b/130b coding -> 16e9 * 128/130 / 8 = 1.969230769e9 B/s
    # per lane; x4 -> 7.876923077e9 B/s.
    # A call sending 4096 B, receiving 1024 B in 6 transactions:
    #   link    = 6 * 500 ns + 5120 B / 7.876923077e9 B/s = 3.0 us + 0.65 us = 3.65 us
    #   compute = 11155 cycles / 200 MHz = 55.775 us;  total = 59.425 us
    c = call_cost(Counters(cycles=11155), LinkCounters(4096, 1024, 6), 200e6, HostLink())
    assert HostLink().bytes_per_s == pytest.approx(7.876923077e9, rel=1e-9)
    assert c.link_s == pytest.approx(3.65e-6, rel=1e-9)
    assert c.compute_s == pytest.approx(55.775e-6, rel=1e-12)
    assert c.total_s == pytest.approx(59.425e-6, rel=1e-9)
    # Gen3 x8 at 1 us: 8e9 * 128/130 / 8 * 8 = 7.876923077e9 B/s too; 2 transactions + 0 B = 2 us
    g3 = call_cost(Counters(cycles=0), LinkCounters(0, 0, 2), 1e9, HostLink(3, 8, 1000))
    assert g3.link_s == pytest.approx(2e-6) and g3.compute_s == 0
    # golden target: no cycles, so no compute time and no total (never a made-up number)
    gold = call_cost(Counters(cycles=None), LinkCounters(1, 1, 1), 1e9, HostLink())
    assert gold.compute_s is None and gold.total_s is None
    two = total_cost([type("R", (), {"counters": Counters(cycles=10), "link": LinkCounters(0, 0, 1)})()] * 2,
                     1e6, HostLink())
    assert two.cycles == 20 and two.link_s == pytest.approx(1e-6)


@pytest.mark.parametrize("bad", [dict(gen=7), dict(lanes=3), dict(latency_ns=-1)])
def test_bad_link_parameters_raise(bad):
    with pytest.raises(ValueError):
        HostLink(**bad)


@pytest.fixture(scope="module")
def tiny_blocks():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    return cfg, model, quantize_model(model, torch.randint(0, cfg.vocab_size, (1, 32)))


def test_sram_report_says_by_how_much_tiny_does_not_fit(tiny_blocks):
    cfg, _, blocks = tiny_blocks
    hw = HwConfig()
    _, layouts, _ = plan_blocks(blocks[:1], hw, cfg.max_seq_len, 0)
    per_block = layouts[0].rows          # 37408 rows: 7 matrices + gains + 128-position RoPE table
    need = 4 * per_block
    with pytest.raises(SramFitError, match=f"{need} weight-SRAM rows .* the build has 65536 .*: "
                                           f"{need - 65536} rows .* short"):
        plan_blocks(blocks, hw, cfg.max_seq_len, 0, weights="resident")
    plan, _, _ = plan_blocks(blocks, hw, cfg.max_seq_len, 1, weights="auto")
    assert not plan.resident and f"{need - 65536} rows" in plan.notes[0]
    assert plan_blocks(blocks[:1], hw, cfg.max_seq_len, 1)[0].resident


@pytest.mark.parametrize("target", ["golden", pytest.param("verilator", marks=pytest.mark.rtl)])
@pytest.mark.parametrize("weights", ["resident", "stream"])
def test_byte_counts_equal_the_tensors_sent(tiny_blocks, target, weights):
    cfg, _, blocks = tiny_blocks
    session = ModelSession(blocks[:1], 32, 1, target, weights, variant="test", progress=False)
    assert session.plan.resident == (weights == "resident")
    if session.plan.resident:   # the one-time load: the image, its program, START_PC, run
        (load,) = session.setup_records
        wl = session.layouts[0]
        # its program: a LOAD per part of the image (the matrices, the tables in a bank of
        # their own: WeightLayout.w_parts) and the HALT, 32 bytes each
        program = len(weight_load_program(wl, 0, session.hw.n)) + 1
        assert program == len(wl.w_parts()) + 1
        assert load.link.bytes_to_device == wl.image.nbytes + program * 32
        assert load.counters.bytes_in == session.layouts[0].image.nbytes
    x = np.random.default_rng(0).integers(-128, 128, (1, 13, cfg.hidden_size), dtype=np.int8)
    y = session.run_block(0, x, 0)
    (step,) = session.records
    # streaming: the step's own program loads the image (it crosses the link with x)
    streamed = not session.plan.resident
    image = session.layouts[0].dram_image().nbytes if streamed else 0
    assert step.kind == "step" and step.loads_weights == streamed
    from hw_offload.compiler import block_program
    insns = len(block_program(blocks[0], session.layouts[0], session.rescales[0], session.hw,
                              session.plan.kv[(0, 0)], 13, 0, session.plan.scratch_a,
                              session.plan.x_dram, session.plan.y_dram,
                              weights_dram=0 if streamed else None)) + 1   # + HALT
    assert step.link.bytes_to_device == x.nbytes + image + insns * 32
    assert step.link.bytes_from_device == y.nbytes
    # write (image,) x, write program, START_PC, start, done, read y
    assert step.link.transactions == 6 + streamed
    assert step.counters.bytes_in == x.nbytes + image      # on-device DMA
    assert step.counters.bytes_out == x.nbytes


@pytest.mark.rtl
def test_cycles_do_not_depend_on_the_data(tiny_blocks):
    """Why one run prices any data: the counted cycles do not depend on the values."""
    cfg, _, blocks = tiny_blocks
    session = ModelSession(blocks[:1], 32, 0, "verilator", variant="test", progress=False)
    rng = np.random.default_rng(seeds(3)[-1])
    for _ in range(2):
        session.run_block(0, rng.integers(-128, 128, (1, 20, cfg.hidden_size), dtype=np.int8), 0, False)
    a, b = (r.counters for r in session.records)
    assert a.cycles == b.cycles and a.array_busy == b.array_busy and a.vector_busy == b.vector_busy


@pytest.mark.rtl
def test_estimate_rows_for_the_speedup_table():
    cfg = get_preset("chip16")
    torch.manual_seed(0)
    state = TinyLlama(cfg).state_dict()
    rows = estimate_rows("chip16", ["train", "prefill", "decode"], state, batch_size=1, seq_len=16)
    assert [r["mode"] for r in rows] == ["train", "prefill", "decode"]
    train, prefill, decode = rows
    assert train["status"] == "n/a" and "inference only" in train["detail"]
    for r, tokens in ((prefill, 16), (decode, 1)):
        assert r["status"] == "ok" and r["estimated"] is True and r["target"] == "verilator"
        assert "estimated at 200 MHz, PCIe Gen4 x4" in r["detail"]
        assert r["median_ms"] == pytest.approx(r["compute_ms"] + r["transfer_ms"])
        assert r["tokens_per_s"] == pytest.approx(tokens / (r["median_ms"] / 1e3))
        cycles = r["compute_ms"] * 1e-3 * 200e6
        assert cycles == pytest.approx(round(cycles)) and cycles > 0     # whole counted cycles
        # cycles by unit: the priced cycles, checked, and summarized in the detail column
        units = r["unit_cycles"]
        assert units["cycles"] == round(cycles) and cb.check(units)
        assert cb.summary(units) in r["detail"]
    assert decode["compute_ms"] < prefill["compute_ms"]
    # tiny at batch 4 cannot hold 4 sequences' KV caches: decode is n/a with the shortfall
    big = estimate_rows("tiny", ["decode"], TinyLlama(get_preset("tiny")).state_dict(), 4, 128)
    assert big[0]["status"] == "n/a" and "largest batch that fits is 1" in big[0]["detail"]
    assert big[0]["median_ms"] is None


def test_backend_options_clock_and_link_set_the_price():
    """RtlOptions.clock_mhz and link are what OffloadContext.price (the table's pricing) uses."""
    from hw_offload.backend import OffloadContext, RtlOptions
    rec = type("R", (), {"counters": Counters(cycles=1000), "link": LinkCounters(4096, 1024, 6)})()
    slow = OffloadContext(RtlOptions(clock_mhz=100.0, link=HostLink(3, 1, 1000.0))).price([rec, rec])
    fast = OffloadContext(RtlOptions(clock_mhz=400.0)).price([rec, rec])
    # 2 x 1000 cycles at 100 MHz = 20 us; Gen3 x1: 8e9*128/130/8 B/s, 12 transactions x 1 us
    assert slow.compute_s == pytest.approx(20e-6) and fast.compute_s == pytest.approx(5e-6)
    assert slow.link_s == pytest.approx(12e-6 + 2 * 5120 / (8e9 * 128 / 130 / 8))
    assert fast.link_s == pytest.approx(12 * 500e-9 + 2 * 5120 / HostLink().bytes_per_s)
    with pytest.raises(ValueError, match="clock_mhz"):
        RtlOptions(clock_mhz=0)
    with pytest.raises(ValueError, match="HostLink"):
        RtlOptions(link="gen4")


def test_table_step_goes_through_the_rtl_backend():
    """benchmarks.rtl_estimate runs the torch.compile'd model; its price is total_cost of the
    session's records at the options' link (golden target: bytes counted, no cycles)."""
    from benchmarks.rtl_estimate import compile_rtl, estimate_step
    from hw_offload.backend import context_of
    cfg = get_preset("chip16")
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    link = HostLink(3, 2, 700.0)
    compiled = compile_rtl(model, target="golden", link=link)
    est = estimate_step(compiled, "decode", 1, 12)
    records = context_of(model).records()
    decode = [r for r in records if r.kind == "step" and r.past == 11]
    assert len(decode) == 1 and decode[0].tokens == 1 and est["device_runs"] == 1
    want = total_cost(decode, 1e6, link)
    assert est["step"]["link_s"] == pytest.approx(want.link_s) and est["step"]["total_s"] is None
    assert est["link"] == link.label() and est["tokens_per_step"] == 1


def test_compiler_and_quant_do_not_import_torch():
    """The compiler layer knows the ISA and numpy only; torch stays in calibrate/backend."""
    import subprocess
    import sys
    code = ("import sys, hw_offload.compiler, hw_offload.quant, hw_offload.sram_plan; "
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert run.returncode == 0, f"importing the compiler pulled in torch: {run.stdout}{run.stderr}"
