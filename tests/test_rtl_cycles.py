"""Pinned cycle counts (hw_offload/cycle_pins.json): a timing change is a visible, reviewed diff.

Regenerate on purpose with ``python -m hw_offload.cycle_pins --write``.
"""
from __future__ import annotations

import pytest

from hw_offload.cycle_model import run_cycles
from hw_offload.cycle_pins import COUNTERS, diff, load_pins, measure, reference_programs
from hw_offload.driver import Accelerator
from hw_offload.isa import HwConfig

pytestmark = pytest.mark.rtl


def test_rtl_counters_match_the_pins():
    with Accelerator("test") as acc:
        got = measure(acc)
    assert diff(got, load_pins()) == [], "timing changed; if intended, run " \
        "`python -m hw_offload.cycle_pins --write` and commit the diff"


def test_cycle_model_matches_the_pins():
    """The golden side's cycle model (used by the fuzzer) agrees with every pinned program."""
    pins, cfg = load_pins(), HwConfig()
    for name, insns in reference_programs(cfg.n).items():
        want = run_cycles(insns, cfg).to_dict()
        assert {k: pins[name][k] for k in want} == want, name


def test_pins_cover_every_counter_and_are_not_trivial():
    pins = load_pins()
    assert set(pins) == set(reference_programs())
    for name, c in pins.items():
        assert set(c) == set(COUNTERS)
        assert c["cycles"] == (c["array_busy"] + c["vector_busy"] + c["dma_busy"] + c["stall"]
                               - c["overlap"] - c["all_busy"]), name
    assert pins["gemm_m128_k8_n8"]["array_busy"] > 64 * 128   # 64 tiles of 128 rows
