"""Host-API misuse raises a clear error at the boundary (issue 18)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from hw_offload.driver import Accelerator, trace_variant
from hw_offload.golden import GoldenAccelerator
from hw_offload.isa import OP_HALT, Insn, encode_program

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        acc.write_program(encode_program([Insn(OP_HALT)]))
        yield acc


def test_run_rejects_a_float_cycle_limit(rtl):
    with pytest.raises(TypeError, match="max_cycles must be an int, got float 2.5"):
        rtl.run(2.5)


@pytest.mark.parametrize("limit", [-1, 0])
def test_run_rejects_a_non_positive_cycle_limit(rtl, limit):
    with pytest.raises(ValueError, match="max_cycles must be >= 1"):
        rtl.run(limit)
    assert rtl.run(100).instructions == 1   # still usable


def test_trace_to_an_unwritable_path_raises(rtl, tmp_path):
    with pytest.raises(OSError, match="cannot write the waveform"):
        rtl.trace(tmp_path / "no_such_dir" / "wave.fst")


def test_trace_name_must_match_the_format(rtl, tmp_path):
    with pytest.raises(ValueError, match="FST"):
        rtl.trace(tmp_path / "wave.vcd")


def test_trace_writes_a_waveform(rtl, tmp_path):
    path = tmp_path / "wave.fst"
    rtl.trace(path)
    rtl.run(100)
    rtl.close_trace()
    assert path.stat().st_size > 0


@pytest.mark.parametrize("shape", [(8,), (2, 4), (1, 2, 8)])
def test_write_program_rejects_other_shapes(rtl, shape):
    words = np.zeros(shape, dtype=np.uint32)
    for dev in (rtl, GoldenAccelerator(rtl.config)):
        with pytest.raises(ValueError, match=r"uint32\[n, 8\]"):
            dev.write_program(words)


def test_trace_variant_follows_the_extension():
    assert trace_variant("a/wave.fst") == "test" and trace_variant("wave.VCD") == "vcd"
    with pytest.raises(ValueError, match=r"\*\.fst or \*\.vcd"):
        trace_variant("wave.txt")


def test_vcd_build_writes_a_vcd_with_the_design_signals(tmp_path):
    """The .vcd extension picks the VCD build; its file has a header and the controller's pc."""
    path = tmp_path / "wave.vcd"
    with Accelerator(trace_variant(path)) as acc:
        with pytest.raises(ValueError, match="VCD"):
            acc.trace(tmp_path / "wave.fst")
        acc.write_program(encode_program([Insn(OP_HALT)]))
        acc.trace(path)
        acc.run(100)
        acc.close_trace()
    text = path.read_text()
    header, _, body = text.partition("$enddefinitions")
    assert body, "no $enddefinitions in the VCD"
    assert re.search(r"\$scope module accel_top \$end", header)
    assert re.search(r"\$var \w+ +32 +\S+ +pc \[31:0\] \$end", header)
    assert "#" in body   # at least one timestamp was dumped


def test_benchmarks_hw_writes_a_block_waveform(tmp_path, capsys):
    """python -m benchmarks.hw --trace FILE.fst: one chip16 block step as an FST waveform."""
    from benchmarks.hw.bench_block import main
    path = tmp_path / "block.fst"
    main(["--trace", str(path), "--trace-preset", "chip16"])
    assert path.stat().st_size > 10_000 and f"wrote {path}" in capsys.readouterr().out
