"""Run a compiled block on a device: driver.Accelerator (RTL) or golden.GoldenAccelerator.

    session = BlockSession(device, program)   # writes the weight image, runs load_program once
    y_q, counters = session.run(x_q)           # x_q int8 (S, hidden) -> y_q int8 (S, hidden)
"""
from __future__ import annotations

import numpy as np

from .compiler import BlockProgram
from .counters import Counters

POISON = 0x5A  # written over the output buffer before every run so unwritten bytes show up


class BlockSession:
    """Weights resident on ``device`` across calls; each ``run`` moves only x and y."""

    def __init__(self, device, program: BlockProgram, max_cycles: int = 200_000_000):
        self.device, self.program, self.max_cycles = device, program, max_cycles
        device.write_mem(program.weight_dram, program.weight_image)
        device.write_program(program.load_program)
        self.load_counters: Counters = device.run(max_cycles)
        self._run_pc = len(program.load_program)
        device.write_program(program.run_program, start_pc=self._run_pc)

    def run(self, x_q: np.ndarray) -> tuple[np.ndarray, Counters]:
        """x_q: int8 (seq_len, hidden) -> (y_q int8 (seq_len, hidden), counters of this run)."""
        p = self.program
        if x_q.shape != (p.seq_len, p.hidden) or x_q.dtype != np.int8:
            raise ValueError(f"x_q must be int8 of shape {(p.seq_len, p.hidden)}, "
                             f"got {x_q.dtype} {x_q.shape}")
        nbytes = p.seq_len * p.hidden
        self.device.write_mem(p.x_dram, p.pack_x(x_q))
        self.device.write_mem(p.y_dram, np.full(nbytes, POISON, dtype=np.uint8))
        counters = self.device.run(self.max_cycles)
        return p.unpack_y(self.device.read_mem(p.y_dram, nbytes)), counters
