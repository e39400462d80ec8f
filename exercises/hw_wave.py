"""One GEMM tile on the Verilator test build, with an FST waveform of every cycle.

    python -m exercises.hw_wave --out results/ex/hw-wave

Runs a single ``GEMM`` instruction, C[16 x 16] = A[16 x 16] x B[16 x 16] (one tile of the
16x16 array: rows = 16, blocks = 1, aux = 1), then ``HALT``, with ``Accelerator.trace``
on. Writes ``gemm_tile.fst`` (open it in GTKWave or Surfer) and ``counters.json`` (the
run's performance counters).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exercises.hw_wave", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from hw_offload.driver import Accelerator
    from hw_offload.isa import OP_GEMM, OP_HALT, Insn, encode_program

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    acc = Accelerator("test")          # the test build is the one compiled with FST tracing
    n = acc.config.n
    acc.trace(out / "gemm_tile.fst")
    acc.write_program(encode_program([Insn(OP_GEMM, rows=n, blocks=1, aux=1, dst=0, src0=0,
                                           src1=0), Insn(OP_HALT)]))
    counters = acc.run(100_000)
    acc.close_trace()
    record = {"n": n, "instruction": f"GEMM rows={n} blocks=1 aux=1", **counters.to_dict()}
    (out / "counters.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"wrote {out / 'gemm_tile.fst'} and {out / 'counters.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
