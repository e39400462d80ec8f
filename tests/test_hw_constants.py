"""Hardware constants are declared once, in rtl/accel_pkg.sv: isa.py and sim/harness.cpp repeat
them and are held to the package here (no Verilator needed)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hw_offload import isa

HW = Path(isa.__file__).resolve().parent
# localparam logic [7:0] NAME = 8'h1E;   localparam int NAME = 32;
_PARAM = re.compile(r"localparam\s+(?:logic\s*\[[^\]]+\]|int|longint)\s+(\w+)\s*=\s*"
                    r"(?:\d+'([hdb])([0-9a-fA-F_]+)|(\d+))\s*;")


def _value(base: str | None, digits: str | None, plain: str | None) -> int:
    if plain is not None:
        return int(plain)
    return int(digits.replace("_", ""), {"h": 16, "d": 10, "b": 2}[base])


@pytest.fixture(scope="module")
def pkg() -> dict[str, int]:
    text = (HW / "rtl" / "accel_pkg.sv").read_text()
    return {m.group(1): _value(m.group(2), m.group(3), m.group(4)) for m in _PARAM.finditer(text)}


def test_the_parser_reads_the_package(pkg):
    assert pkg["IMEM_BASE"] == 0x8000_0000 and pkg["REG_CNT_INSTRUCTIONS"] == 0x1E
    assert pkg["OP_RESADD"] == 0x25 and pkg["MEM_ACC"] == 2


@pytest.mark.parametrize("prefix", ["OP_", "ERR_", "REG_", "MEM_", "GEMM_", "COLSCALE_"])
def test_isa_py_matches_the_package(pkg, prefix):
    """Every constant of these families in the package has the same value in isa.py, and isa.py
    declares none the package lacks (counters: isa.COUNTER_REGS)."""
    in_pkg = {k: v for k, v in pkg.items() if k.startswith(prefix)}
    assert in_pkg, f"no {prefix}* constants found in accel_pkg.sv"
    in_isa = {k: getattr(isa, k) for k in dir(isa) if k.startswith(prefix) and
              isinstance(getattr(isa, k), int)}
    if prefix == "REG_":
        in_isa.update({f"REG_CNT_{name.upper()}": reg for name, reg in isa.COUNTER_REGS.items()})
    if prefix == "GEMM_":
        in_pkg.pop("GEMM_FLAGS", None)   # an expression over the three flags, not a literal
    assert in_isa == in_pkg


@pytest.mark.parametrize("name", ["IMEM_BASE", "INSN_BYTES", "CS_SHIFT", "SRAM_BANKS"])
def test_isa_py_scalars_match_the_package(pkg, name):
    assert getattr(isa, name) == pkg[name]


def test_harness_cpp_matches_the_package(pkg):
    text = (HW / "sim" / "harness.cpp").read_text()
    consts = {m.group(1): int(m.group(2), 0)
              for m in re.finditer(r"constexpr uint32_t (k\w+) = (0x[0-9a-fA-F]+|\d+)u?;", text)}
    assert consts == {"kImemBase": pkg["IMEM_BASE"], "kInsnBytes": pkg["INSN_BYTES"]}
    enum = re.search(r"enum Reg : uint8_t \{([^}]*)\}", text).group(1)
    regs = {m.group(1): int(m.group(2), 0) for m in re.finditer(r"(k\w+) = (0x[0-9a-fA-F]+)", enum)}
    assert regs, "no register enum found in harness.cpp"
    for k, v in regs.items():
        # kDramBytes -> REG_DRAM_BYTES
        name = "REG_" + re.sub(r"(?<!^)([A-Z])", r"_\1", k[1:]).upper()
        assert pkg[name] == v, f"harness.cpp {k} = 0x{v:x}, accel_pkg.sv {name} = 0x{pkg[name]:x}"


def _struct_layout(text: str, name: str) -> tuple[tuple[str, int, int], ...]:
    """A packed struct typedef -> ((member, lowest bit, width), ...), least significant first.
    Members are listed from the most significant bit down, each as ``logic [hi:lo] name;``."""
    body = re.search(r"typedef\s+struct\s+packed\s*\{(.*?)\}\s*" + name + r"\s*;", text, re.S)
    assert body, f"no packed struct {name} in accel_pkg.sv"
    members = [(m.group(3), int(m.group(1)) - int(m.group(2)) + 1) for m in
               re.finditer(r"logic\s*\[(\d+):(\d+)\]\s*(\w+)\s*;", body.group(1))]
    layout, lo = [], 0
    for member, width in reversed(members):
        layout.append((member, lo, width))
        lo += width
    return tuple(layout)


def test_instruction_fields_match_the_packed_struct():
    """isa.INSN_FIELDS (which Insn.encode/decode use) is bit for bit accel_pkg.sv's insn_t."""
    layout = _struct_layout((HW / "rtl" / "accel_pkg.sv").read_text(), "insn_t")
    assert sum(w for _, _, w in layout) == 8 * isa.INSN_BYTES
    assert layout == isa.INSN_FIELDS
    assert set(isa.RESERVED_FIELDS) == {n for n, _, _ in layout if n.startswith("rsv")}


def test_every_field_lands_where_the_struct_puts_it():
    """Each field, encoded alone with all its bits set, sets exactly its struct bits."""
    for name, lo, width in isa.INSN_FIELDS:
        if name in isa.RESERVED_FIELDS:
            continue
        words = isa.Insn(**{"op": 0, name: (1 << width) - 1}).encode()
        value = sum(int(w) << (32 * k) for k, w in enumerate(words))
        assert value == ((1 << width) - 1) << lo, name
