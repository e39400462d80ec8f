"""Helpers shared by tests/test_rtl_*.py: one Verilator build, run-on-both-devices.

Kept in the package (not in a conftest) so the benchmarks and every hw test can use it too.
"""
from __future__ import annotations

import os

import numpy as np

from .golden import GoldenAccelerator
from .isa import MEM_A, MEM_ACC, MEM_W, OP_HALT, OP_LOAD, OP_STORE, Insn, encode_program

POISON = 0xA5


def seeds(count: int, base: int | None = None) -> list[int]:
    """``count`` fixed seeds, the same every run (default tests must be deterministic).

    HW_TEST_SEED=<n> replaces the seeds after the first two by n, n+1, ... (to replay a sweep's
    failing seed; the seed is part of each test id). Random-seed sweeps are separate tests
    marked ``sweep`` (tests/conftest.py), which print the seeds they draw.
    """
    fixed = [0, 1]
    env = os.environ.get("HW_TEST_SEED")
    start = int(env) if env else (base if base is not None else 2)
    return fixed[:count] + [start + i for i in range(max(0, count - len(fixed)))]


def make_block(cfg, seed: int, channel_spread: float = 0.0):
    """A v1 decoder block with unit-scale weights (std 1/sqrt(fan_in)) so both residual branches
    matter, 8 calibration inputs and a different evaluation input, all N(0, 1).

    ``channel_spread`` > 0 multiplies each weight row by exp(spread * N(0, 1)): output channels
    of very different size, the case per-channel weight scales exist for.
    -> (layer, cos, sin, calib (8, S, hidden) float32 numpy, x (S, hidden) float32 numpy).
    """
    import math

    import torch

    from version1_baseline import TinyLlama
    torch.manual_seed(seed)
    model = TinyLlama(cfg)
    layer = model.model.layers[0]
    with torch.no_grad():
        for p in layer.parameters():
            if p.dim() == 2:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
                if channel_spread:
                    p.mul_(torch.exp(channel_spread * torch.randn(p.shape[0], 1)))
            else:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    s = cfg.max_seq_len
    cos, sin = model.model.rotary_emb(torch.arange(s))
    calib = torch.randn(8, s, cfg.hidden_size).numpy()
    x = torch.randn(s, cfg.hidden_size).numpy()
    return layer, cos, sin, calib, x


class Staging:
    """Builds a small program: LOAD inputs from DRAM, the ops under test, STORE outputs, HALT."""

    def __init__(self, n: int = 16):
        self.n = n
        self.dram: list[tuple[int, np.ndarray]] = []
        self.pre: list[Insn] = []
        self.ops: list[Insn] = []
        self.post: list[Insn] = []
        self.outputs: list[tuple[str, int, int]] = []   # (name, dram addr, bytes)
        self._next = 0

    def _dram(self, nbytes: int) -> int:
        addr = self._next
        self._next += -(-nbytes // 256) * 256
        return addr

    def load(self, mem: int, rows_data: np.ndarray, sram_row: int) -> None:
        """rows_data: (rows, N) int8 for A/W or (rows, N) int32 for ACC."""
        addr = self._dram(rows_data.nbytes)
        self.dram.append((addr, np.ascontiguousarray(rows_data)))
        self.pre.append(Insn(OP_LOAD, flags=mem, rows=rows_data.shape[0], dst=sram_row, dram=addr))

    def store(self, name: str, mem: int, sram_row: int, rows: int) -> None:
        nbytes = rows * self.n * (4 if mem == MEM_ACC else 1)
        addr = self._dram(nbytes)
        self.post.append(Insn(OP_STORE, flags=mem, rows=rows, src0=sram_row, dram=addr))
        self.outputs.append((name, addr, nbytes))

    def program(self) -> np.ndarray:
        return encode_program(self.pre + self.ops + self.post + [Insn(OP_HALT)])

    def run(self, device) -> tuple[dict[str, np.ndarray], object]:
        """Run on ``device``; outputs are poisoned first so unwritten bytes cannot pass."""
        for addr, data in self.dram:
            device.write_mem(addr, data)
        for _, addr, nbytes in self.outputs:
            device.write_mem(addr, np.full(nbytes, POISON, dtype=np.uint8))
        device.write_program(self.program())
        counters = device.run(5_000_000)
        return {name: device.read_mem(addr, nbytes) for name, addr, nbytes in self.outputs}, counters

    def run_both(self, rtl) -> tuple[dict, dict, object]:
        """-> (rtl outputs, golden outputs, rtl counters)."""
        got, counters = self.run(rtl)
        want, _ = self.run(GoldenAccelerator(rtl.config))
        return got, want, counters


__all__ = ["Staging", "make_block", "seeds", "MEM_A", "MEM_W", "MEM_ACC"]


def run_one_block(device, qb, x_q: np.ndarray):
    """One block, prefill of x_q (int8 (S, hidden), positions 0..S-1) on ``device`` through the
    model session, with the output buffer poisoned first so unwritten bytes show up.

    -> (y_q int8 (S, hidden), the step's Counters, the session: its ``setup_records`` hold the
    one-time weight load).
    """
    from .model_session import ModelSession
    session = ModelSession([qb], x_q.shape[0], 0, device=device, weights="resident", progress=False)
    device.write_mem(session.plan.y_dram, np.full(x_q.size, POISON, dtype=np.uint8))
    y_q = session.run_block(0, x_q[None], 0, keep_kv=False)[0]
    (step,) = [r for r in session.records if r.kind == "step"]
    session.records.clear()
    return y_q, step.counters, session
