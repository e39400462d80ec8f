"""Host-link traffic of decode with weights resident vs streamed: raw counters, no prices.

    python -m exercises.hw_link --preset chip16 --tokens 4 --out results/ex/hw-link

One decoder block of the preset (quantized as ``benchmarks.hw`` does) runs on the golden
model, which counts host-link bytes and transactions exactly as the driver does for the
RTL: a prefill of ``seq - tokens`` positions, then ``tokens`` decode steps, once with the
weights resident in weight SRAM (loaded once, before any step) and once streamed (loaded
before every call). ``link.json`` holds the counters; pricing them is the exercise
(``hw_offload/cost.py``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hw_offload.device_counters import LinkCounters


def measure(preset: str, tokens: int) -> dict:
    from benchmarks.hw.bench_block import build_block
    from hw_offload.calibrate import quantize_block
    from hw_offload.model_session import ModelSession
    from hw_offload.quant import quantize

    cfg, layer, cos, sin, calib, x = build_block(preset)
    seq = cfg.max_seq_len
    if not 1 <= tokens < seq:
        raise SystemExit(f"error: --tokens must be in 1..{seq - 1} for {preset}, got {tokens}")
    qb = quantize_block(layer, cfg, calib, cos, sin)
    x_q = quantize(x, qb.act_scales["x"])[None]          # (1, seq, hidden) int8
    prompt = seq - tokens
    modes = {}
    for mode in ("resident", "stream"):
        s = ModelSession([qb], seq, 1, target="golden", weights=mode, progress=False)
        s.run_block(0, x_q[:, :prompt], 0)
        s.records.clear()
        for p in range(prompt, seq):
            s.run_block(0, x_q[:, p:p + 1], p)
        link = sum((r.link for r in s.records), LinkCounters())
        setup = sum((r.link for r in s.setup_records), LinkCounters())
        modes["resident" if mode == "resident" else "streamed"] = {
            "decode_tokens": tokens, "decode_link": link.to_dict(),
            "decode_calls": len(s.records), "one_time_weight_load_link": setup.to_dict()}
        s.close()
    return {"preset": preset, "seq_len": seq, "prompt": prompt, "target": "golden",
            "counted_by": "hw_offload LinkCounters (the driver's count; golden and RTL agree)",
            "modes": modes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exercises.hw_link", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="chip16")
    p.add_argument("--tokens", type=int, default=4)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    res = measure(args.preset, args.tokens)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "link.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["modes"], indent=2))
    print(f"wrote {out / 'link.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
