"""The device contract (hw_offload/device.py): the golden model and the Verilator driver are both
``Device``s, reject bad host calls with the same exception and message, and count host-link
traffic identically."""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.device import Device
from hw_offload.driver import Accelerator
from hw_offload.errors import AddressError
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import IMEM_BASE, INSN_BYTES, OP_HALT, Insn, encode_program

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def pair():
    with Accelerator("test") as rtl:
        yield rtl, GoldenAccelerator(rtl.config)


def test_both_devices_satisfy_the_protocol(pair):
    rtl, gold = pair
    assert isinstance(rtl, Device) and isinstance(gold, Device)
    assert not isinstance(object(), Device)


def _bad_calls(cfg):
    imem_end = IMEM_BASE + cfg.imem_depth * INSN_BYTES
    four = np.zeros(4, dtype=np.uint8)
    return {
        "negative address": lambda d: d.write_mem(-4, four),
        "float address": lambda d: d.read_mem(4.0, 4),
        "misaligned address": lambda d: d.write_mem(2, four),
        "misaligned length": lambda d: d.read_mem(0, 3),
        "negative length": lambda d: d.read_mem(0, -4),
        "past the end of DRAM": lambda d: d.write_mem(cfg.dram_bytes - 4, np.zeros(8, np.uint8)),
        "between DRAM and IMEM": lambda d: d.read_mem(cfg.dram_bytes, 4),
        "past the end of IMEM": lambda d: d.read_mem(imem_end - 4, 8),
        "program of 7 words": lambda d: d.write_program(np.zeros((2, 7), np.uint32)),
        "program past IMEM": lambda d: d.write_program(encode_program([Insn(OP_HALT)]),
                                                       start_pc=cfg.imem_depth),
        "float cycle limit": lambda d: d.run(2.5),
        "zero cycle limit": lambda d: d.run(0),
    }


def _raised(call, dev):
    with pytest.raises((AddressError, TypeError, ValueError)) as info:
        call(dev)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", sorted(_bad_calls(GoldenAccelerator().config)))
def test_shared_checks_raise_identically_and_count_nothing(pair, case):
    rtl, gold = pair
    call = _bad_calls(rtl.config)[case]
    before = rtl.link.copy(), gold.link.copy()
    assert _raised(call, rtl) == _raised(call, gold)
    assert (rtl.link, gold.link) == before   # a rejected call moved nothing over the link


def test_link_accounting_is_identical(pair):
    """Each device counts the same transfers; the data read back is what was written."""
    rtl, gold = pair
    data = np.random.default_rng(13).integers(0, 256, 4 * 37, dtype=np.uint8)
    prog = encode_program([Insn(OP_HALT)])
    delta = {}
    for dev in (rtl, gold):
        before = dev.link.copy()
        dev.write_mem(64, data)
        back = dev.read_mem(64, data.size)
        dev.write_program(prog, start_pc=3)
        assert dev.run(1000).instructions == 1
        np.testing.assert_array_equal(back, data)
        delta[type(dev).__name__] = dev.link - before
    assert delta["Accelerator"] == delta["GoldenAccelerator"]
    d = delta["Accelerator"]
    assert d.bytes_to_device == data.size + INSN_BYTES and d.bytes_from_device == data.size
    assert d.transactions == 1 + 1 + 2 + 2   # write, read, program + START_PC, doorbell + status
