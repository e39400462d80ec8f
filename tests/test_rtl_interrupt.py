"""Long cycle-accurate runs: a real Ctrl-C (SIGINT) stops them promptly and leaves the
accelerator usable; the progress bar shows what is running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hw_offload.model_session import ModelSession
from hw_offload.calibrate import quantize_block
from version1_baseline import TinyLlama, get_preset

pytestmark = pytest.mark.rtl
REPO = Path(__file__).resolve().parents[1]

# ~128M simulated cycles (1000 GEMMs of 64 tiles x 2000 rows): a minute or more at the
# simulator's 1.5-2M cycles/s, so only a prompt interrupt can end it inside the deadline.
CHILD = textwrap.dedent("""
    import signal, time
    from hw_offload.driver import Accelerator
    from hw_offload.isa import OP_GEMM, OP_HALT, OP_REQ, Insn, encode_program
    # an interactive shell's default; a background test runner may start us with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    acc = Accelerator("test")
    big = Insn(OP_GEMM, rows=2000, blocks=8, aux=8, dst=0, src0=0, src1=0)
    acc.write_program(encode_program([big] * 1000 + [Insn(OP_HALT)]))
    print("running", flush=True)
    t0 = time.monotonic()
    try:
        acc.run(max_cycles=10**10)
        print("finished without interruption", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - t0:.1f} s", flush=True)
        acc.write_program(encode_program([Insn(OP_REQ, rows=1, blocks=1, mult0=1), Insn(OP_HALT)]))
        print(f"usable: {acc.run(100_000).instructions} instructions", flush=True)
""")


def test_sigint_stops_a_long_verilator_run_and_the_device_stays_usable():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = child.stdout.readline()          # the build (if not cached) happens before this
        assert line.strip() == "running", (line, child.stderr.read() if child.poll() is not None else "")
        import time
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert "interrupted after" in out, out
    assert "usable: 2 instructions" in out, out


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_names_the_block_target_and_runs(capfd, progress):
    cfg = get_preset("chip16")
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    layer = model.model.layers[0]
    cos, sin = model.model.rotary_emb(torch.arange(cfg.max_seq_len))
    calib = torch.randn(2, cfg.max_seq_len, cfg.hidden_size).numpy()
    qb = quantize_block(layer, cfg, calib, cos, sin)
    session = ModelSession([qb], cfg.max_seq_len, 2, "verilator", progress=progress, variant="test")
    try:
        # batch 2 x 9 rows exceed one run's scratch (16 rows): one accelerator run per sequence
        x = np.random.default_rng(0).integers(-50, 50, (2, 9, cfg.hidden_size)).astype(np.int8)
        session.run_block(0, x, 0)
    finally:
        session.close()
    err = capfd.readouterr().err
    # tqdm redraws at most every 0.1 s and clears the bar (leave=False), so the runs this
    # fast show only its first frame: name, target and the total number of runs
    assert ("rtl block 0 (verilator)" in err and "/2 " in err) == progress, err
