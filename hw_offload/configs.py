"""Accelerator configurations the user chooses from Python: sizes, memory timing and clock.

One ``AccelConfig`` names everything that differs between builds of the same RTL:

* the array (``n`` x ``n`` PEs) and the vector unit's ``lanes``;
* the SRAM sizes in rows (an activation / weight row is ``n`` int8, an accumulator row ``n``
  int32) and the instruction memory depth;
* the off-chip memory behind the accelerator: its size, the latency of one burst in
  accelerator cycles and its bandwidth in bytes per cycle;
* the clock the counted cycles are priced at.

``verilator_params()`` gives the top-level parameters a build needs; ``hw()`` the sizes the
RTL reports back in its registers (``isa.HwConfig``), so a driver can check it got the build it
asked for. The named points below are the ones the README, the speedup table and the
synthesis report use.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .isa import HwConfig

KIB = 1024
MIB = 1024 * KIB


class UnknownConfigError(KeyError):
    """A configuration name that is not in ``NAMED``."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def _pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


@dataclass(frozen=True)
class AccelConfig:
    """One accelerator build. Sizes in rows; see the module docstring for units."""

    name: str
    n: int = 16                   # array is n x n; also the SRAM line width in bytes
    lanes: int = 16               # vector-unit lanes; divides n
    a_rows: int = 16384           # activation SRAM rows of n int8
    w_rows: int = 65536           # weight SRAM rows of n int8
    acc_rows: int = 16384         # accumulator SRAM rows of n int32
    dram_bytes: int = 2 * MIB     # off-chip memory
    imem_depth: int = 1024        # 256-bit instructions
    mem_latency_cycles: int = 0   # off-chip: cycles from a burst's request to its first beat
    mem_bytes_per_cycle: int = 16  # off-chip: sustained bandwidth
    clock_mhz: float = 200.0      # prices counted cycles (justified by hw synthesis depth)

    def __post_init__(self):
        for f in ("n", "lanes", "a_rows", "w_rows", "acc_rows", "dram_bytes", "imem_depth"):
            v = getattr(self, f)
            if not isinstance(v, int) or not _pow2(v):
                raise ValueError(f"AccelConfig {self.name!r}: {f} must be a power of two, got {v!r}")
        if self.n < 4:
            raise ValueError(f"AccelConfig {self.name!r}: n must be >= 4, got {self.n}")
        if self.n % self.lanes:
            raise ValueError(f"AccelConfig {self.name!r}: lanes ({self.lanes}) must divide n "
                             f"({self.n})")
        # instruction address fields are 16-bit row numbers
        for f in ("a_rows", "w_rows", "acc_rows"):
            if getattr(self, f) > 65536:
                raise ValueError(f"AccelConfig {self.name!r}: {f} must be <= 65536 (16-bit row "
                                 f"addresses), got {getattr(self, f)}")
        if self.mem_latency_cycles < 0 or self.mem_bytes_per_cycle <= 0:
            raise ValueError(f"AccelConfig {self.name!r}: mem_latency_cycles must be >= 0 and "
                             f"mem_bytes_per_cycle > 0, got {self.mem_latency_cycles}, "
                             f"{self.mem_bytes_per_cycle}")
        if not self.clock_mhz > 0:
            raise ValueError(f"AccelConfig {self.name!r}: clock_mhz must be positive, "
                             f"got {self.clock_mhz}")

    def hw(self) -> HwConfig:
        """The sizes the RTL of this build reports in its registers."""
        return HwConfig(n=self.n, a_rows=self.a_rows, w_rows=self.w_rows,
                        acc_rows=self.acc_rows, dram_bytes=self.dram_bytes,
                        imem_depth=self.imem_depth)

    def sram_bytes(self) -> dict[str, int]:
        """On-chip bytes per memory (activation, weight, accumulator, instruction)."""
        return {"activation": self.a_rows * self.n, "weight": self.w_rows * self.n,
                "accumulator": self.acc_rows * self.n * 4, "instruction": self.imem_depth * 32}

    def verilator_params(self) -> dict[str, int]:
        """``accel_top`` parameters (``-G`` overrides) that build this configuration."""
        return {"N": self.n, "LANES": self.lanes, "A_ROWS": self.a_rows, "W_ROWS": self.w_rows,
                "ACC_ROWS": self.acc_rows, "DRAM_BYTES": self.dram_bytes,
                "IMEM_DEPTH": self.imem_depth}

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


NAMED: dict[str, AccelConfig] = {
    # Today's default build: the one every test and committed cycle pin uses.
    "chip16": AccelConfig(name="chip16"),
    # Edge-like: 16x16 with a 1 MiB weight SRAM (tiny's 2.3 MiB of weights are streamed, one
    # block's image at a time), a quarter of chip16's accumulator, slower off-chip memory.
    "edge16": AccelConfig(name="edge16", a_rows=16384, w_rows=65536, acc_rows=4096,
                          dram_bytes=8 * MIB, mem_latency_cycles=100, mem_bytes_per_cycle=16),
    # FPGA-like: 32x32 with 4 MiB of SRAM (1 MiB activation, 2 MiB weight, 1 MiB accumulator).
    # tiny's weights (2.3 MiB with their RoPE and scale tables) stay resident: 2 MiB is the
    # most weight SRAM a 16-bit row address reaches at N=32, so sram_plan.choose_spill keeps
    # the overflow (whole matrices) at the top of the activation SRAM, beside the batch-4 KV
    # caches (tests/test_sram_spill.py).
    "fpga32": AccelConfig(name="fpga32", n=32, lanes=32, a_rows=32768, w_rows=65536,
                          acc_rows=8192, dram_bytes=16 * MIB, mem_latency_cycles=60,
                          mem_bytes_per_cycle=32),
}
DEFAULT = "chip16"


def get_config(name: str) -> AccelConfig:
    """The named configuration; ``UnknownConfigError`` lists the names."""
    try:
        return NAMED[name]
    except (KeyError, TypeError):
        raise UnknownConfigError(f"unknown accelerator configuration {name!r}; choose one of "
                                 f"{sorted(NAMED)}") from None


def resolve(config: "AccelConfig | str | None") -> AccelConfig:
    """An AccelConfig from a name, an AccelConfig, or None (the default, chip16)."""
    if config is None:
        return NAMED[DEFAULT]
    if isinstance(config, str):
        return get_config(config)
    if not isinstance(config, AccelConfig):
        raise TypeError(f"an accelerator configuration is a name ({sorted(NAMED)}) or a "
                        f"hw_offload.configs.AccelConfig, got {type(config).__name__} {config!r}")
    return config


def with_clock(config: "AccelConfig | str | None", clock_mhz: float | None) -> AccelConfig:
    """The configuration that prices cycles at ``clock_mhz``: the clock is a field of the
    configuration, its one source of truth.

    * ``clock_mhz`` None: the configuration as it is (its own clock).
    * no configuration named (None): chip16 at ``clock_mhz``.
    * a configuration and a clock: they must agree; a different clock raises ValueError (a
      configuration at another clock is ``dataclasses.replace(config, clock_mhz=...)``).
    """
    if clock_mhz is not None and (isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float))
                                  or not clock_mhz > 0):
        raise ValueError(f"clock_mhz must be a positive number of MHz, got {clock_mhz!r}")
    if config is None and clock_mhz is not None:
        return replace(NAMED[DEFAULT], clock_mhz=float(clock_mhz))
    resolved = resolve(config)
    if clock_mhz is not None and float(clock_mhz) != resolved.clock_mhz:
        raise ValueError(f"clock_mhz {clock_mhz:g} conflicts with configuration {resolved.name!r}, "
                         f"which is priced at {resolved.clock_mhz:g} MHz; give the clock once: "
                         f"drop clock_mhz, or pass dataclasses.replace(config, clock_mhz="
                         f"{clock_mhz:g}) as the configuration")
    return resolved
