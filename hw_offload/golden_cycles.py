"""The golden model with a clock: bit-exact numpy execution, counters from cycle_model.py.

``CycleModelAccelerator`` runs a program exactly as ``golden.GoldenAccelerator`` does and then
fills the clocked counters (cycles, array / vector / DMA busy, stall) from
``cycle_model.run_cycles`` over the instructions it executed. The fuzzer holds that model equal
to the RTL's counters cycle for cycle on the default build, so it gives counted cycles for any
configuration (``configs.AccelConfig``) without building it in Verilator. They are the cycle
model's counts, not a simulation of the RTL: results built on them say so
(``COUNTER_SOURCE``).
"""
from __future__ import annotations

from .cycle_model import run_cycles
from .device_counters import Counters
from .errors import CycleLimitError
from .golden import GoldenAccelerator
from .isa import Insn

COUNTER_SOURCE = "cycle model (hw_offload/cycle_model.py) over the golden model's executed program"


class CycleModelAccelerator(GoldenAccelerator):
    """A ``GoldenAccelerator`` whose runs report counted cycles (see the module docstring)."""

    def _run_program(self, max_cycles: int) -> Counters:
        c = super()._run_program(max_cycles)
        # straight-line programs (the ISA has no branches): the executed instructions are the
        # ``instructions`` words from start_pc, HALT included
        executed = [Insn.decode(w) for w in self.imem[self.start_pc:self.start_pc + c.instructions]]
        lanes = self.accel_config.lanes if self.accel_config is not None else None
        counted = run_cycles(executed, self.config, "halt", self.memory_timing, lanes=lanes)
        if counted.cycles > max_cycles:
            raise CycleLimitError(max_cycles, self.start_pc + c.instructions - 1)
        for name, value in counted.to_dict().items():
            setattr(c, name, value)
        return c
