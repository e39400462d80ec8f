"""DRAM outside the accelerator: the harness's memory model answers the DMA engine's AXI4
master port with a latency and a bandwidth set at run time (``set_memory_timing``), and the
cycle model (hw_offload.mem_timing) predicts the RTL's counters at every setting."""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.configs import get_config
from hw_offload.cycle_model import run_cycles
from hw_offload.driver import Accelerator
from hw_offload.fuzz import env_seed, fuzz
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import MEM_A, MEM_ACC, OP_HALT, OP_LOAD, OP_STORE, Insn, encode_program
from hw_offload.mem_timing import MemoryTiming

pytestmark = pytest.mark.rtl

EDGE16 = MemoryTiming.from_config(get_config("edge16"))
# edge16's latency; a bandwidth that is not a divisor of the 16-byte beat; a wide one
TIMINGS = [EDGE16, MemoryTiming(7, 5), MemoryTiming(3, 64)]


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


@pytest.fixture
def timed(rtl, request):
    t = request.param
    rtl.set_memory_timing(t.latency_cycles, t.bytes_per_cycle)
    yield rtl
    rtl.set_memory_timing(0, 16)


@pytest.mark.parametrize("timed", TIMINGS, indirect=True, ids=str)
def test_fuzz_programs_agree_with_golden_and_cycle_model_at_other_timings(timed):
    """Random legal and malformed programs (DMA to every SRAM, extents flush with the DRAM
    end): data, errors and every counter as the golden model and the cycle model say."""
    rep = fuzz(timed, env_seed(20261129), programs=20)
    assert not rep.failures, [p for _, p in rep.failures]


@pytest.mark.parametrize("timed", [MemoryTiming(100, 16), MemoryTiming(7, 5)], indirect=True,
                         ids=str)
def test_bursts_across_4k_boundaries_move_the_right_bytes_at_the_counted_cost(timed):
    """A LOAD of accumulator rows starting 48 bytes below a 4 KiB boundary (bursts of 3, 256,
    256, ... beats), stored back elsewhere, reads back what was written; the busy cycles are
    the hand-derived 1 + latency + (beats - 1) * ceil(16 / bandwidth) for the LOAD and
    1 + (beats - 1) * ceil(16 / bandwidth) for the STORE, and the HALT after the STORE waits
    for its write response."""
    t, n = timed.memory_timing, timed.config.n
    rng = np.random.default_rng(5)
    rows, src, dst = 300, 4096 - 48, 64 * 1024
    data = rng.integers(0, 256, rows * n * 4, dtype=np.uint8)
    timed.write_mem(src, data)
    timed.write_mem(dst, np.full(data.size, 0xA5, dtype=np.uint8))   # poison
    timed.write_program(encode_program([Insn(OP_LOAD, flags=MEM_ACC, rows=rows, dram=src)]
                                       + [Insn(OP_HALT)]))
    c_load = timed.run()
    timed.write_program(encode_program([Insn(OP_STORE, flags=MEM_ACC, rows=rows, dram=dst),
                                        Insn(OP_HALT)]))
    c_store = timed.run()
    assert np.array_equal(timed.read_mem(dst, data.size), data)
    beats, per_beat = 4 * rows, -(-16 // t.bytes_per_cycle)
    assert c_load.dma_busy == 1 + t.latency_cycles + (beats - 1) * per_beat
    assert c_store.dma_busy == 1 + (beats - 1) * per_beat
    # FETCH + DECODE of STORE and HALT, then HALT held until latency + 2 after the last beat
    assert c_store.stall == 4 + t.latency_cycles
    assert c_store.cycles == c_store.dma_busy + c_store.stall


def test_chip16_timing_keeps_one_beat_per_cycle(rtl):
    """At the default timing (chip16: latency 0, 16 B/cycle) a transfer costs one cycle per
    line, as before DRAM moved out. STORE: dispatched in 1, beats 2..41, its write response
    leaves nothing outstanding from 41 + 2 = 43; the LOAD (fetched in 2) finds the DMA free
    in 42 but waits for the response, dispatches in 43, beats 44..83; HALT stops in 84:
    85 cycles, 5 of them stall (0, 1, 42, 43, 84)."""
    assert rtl.memory_timing == MemoryTiming.from_config(get_config("chip16"))
    prog = [Insn(OP_STORE, flags=MEM_A, rows=40, dram=0), Insn(OP_LOAD, flags=MEM_A, rows=40,
                                                                   dst=100, dram=0),
            Insn(OP_HALT)]
    rtl.write_program(encode_program(prog))
    c = rtl.run()
    assert (c.cycles, c.dma_busy, c.stall) == (85, 80, 5)
    assert c.to_dict() == {**c.to_dict(), **run_cycles(prog, rtl.config).to_dict()}


@pytest.mark.parametrize("bad", [(-1, 16), (0, 0), (0, 1.5), (10**7, 16)])
def test_bad_memory_timing_is_refused_at_the_boundary(rtl, bad):
    with pytest.raises(ValueError, match="memory timing"):
        rtl.set_memory_timing(*bad)
    with pytest.raises(ValueError, match="memory timing"):
        GoldenAccelerator().set_memory_timing(*bad)
    assert rtl.memory_timing == MemoryTiming(0, 16)
