"""Whole-model offload: estimated accelerator time next to v1 measured here.

    python -m benchmarks.hw.bench_offload [--out DIR] [--clock-mhz 200] [--deadline-ms 1]
                                          [--update-readme]

Writes into results/<date-time>/hw unless --out says otherwise; hw_offload/README.md's worked
example changes only with --update-readme.

For chip16 and tiny, batch 1:
* ESTIMATED accelerator time per block and per step (prefill of max_seq_len tokens, one decode
  token at position max_seq_len-1), v1 through ``torch.compile(backend="rtl")`` as in the
  speedup table (benchmarks.rtl_estimate): compute (cycles counted by the Verilator fast build, at the
  stated clock), host-link transfer (bytes and transactions counted by the driver, PCIe model),
  total; weights resident or streamed as the SRAM plan decides;
* MEASURED here: version 1 (float, eager) on this CPU for the same steps, with benchmarks.timing;
  simulation speed of the Verilator runs (simulated cycles per wall second);
* utilization from counted cycles: array-busy fraction, and useful MACs / (N^2 x cycles).
Estimates are labelled "estimated at <clock>"; nothing estimated is called measured.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.environment import REPO_ROOT, default_out, machine_info
from benchmarks.hw import cycle_breakdown as cb
from benchmarks.timing import summarize, time_repeats
from hw_offload.cost import HostLink
from benchmarks.rtl_estimate import compile_rtl, estimate_step
from version1_baseline import TinyLlama, get_preset


def useful_macs(cfg, tokens: int, past: int) -> int:
    """MACs of one block for ``tokens`` new tokens after ``past`` cached ones (unpadded)."""
    h, d, H, KV, inter = cfg.hidden_size, cfg.head_dim, cfg.num_heads, cfg.num_kv_heads, cfg.intermediate_size
    proj = tokens * (h * H * d + 2 * h * KV * d + H * d * h + 3 * h * inter)
    keys = sum(past + i + 1 for i in range(tokens))       # causal: query i sees past+i+1 keys
    return proj + 2 * H * d * keys


def v1_measured(model, mode: str, seq_len: int, repeats: int, batch: int = 1) -> dict:
    """Median ms of one v1 step (``batch`` sequences) and of one of its decoder blocks, on this
    CPU (5 warm-up calls, then ``repeats`` timed ones)."""
    cpu = torch.device("cpu")
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len))
    cache = model.new_cache(batch)
    layer = model.model.layers[0]
    x = model.model.embed_tokens(ids)
    if mode == "prefill":
        def step():
            cache.reset()
            model(ids, cache=cache)
        cos, sin = model.model.rotary_emb(torch.arange(seq_len))
        block = lambda: layer(x, cos, sin)  # noqa: E731
    else:
        with torch.no_grad():
            model(ids[:, :-1], cache=cache)

        def step():
            cache.rewind(seq_len - 1)
            model(ids[:, -1:], cache=cache)
        cos, sin = model.model.rotary_emb(torch.arange(seq_len - 1, seq_len))

        def block():
            cache.rewind(seq_len - 1)
            layer(x[:, -1:], cos, sin, cache, 0)
    with torch.no_grad():
        return {"step_ms": summarize(time_repeats(step, cpu, 5, repeats)),
                "block_ms": summarize(time_repeats(block, cpu, 5, repeats))}


def bench(preset: str, clock_mhz: float, link: HostLink, repeats: int) -> dict:
    cfg = get_preset(preset)
    torch.manual_seed(0)
    model = TinyLlama(cfg).eval()
    compiled = compile_rtl(model, clock_mhz=clock_mhz, link=link)
    out = {"preset": preset, "config": cfg.to_dict(), "modes": {}}
    for mode in ("prefill", "decode"):
        t0 = time.perf_counter()
        est = estimate_step(compiled, mode, 1, cfg.max_seq_len)
        blocks = est.pop("blocks")
        wall = time.perf_counter() - t0
        tokens = cfg.max_seq_len if mode == "prefill" else 1
        past = 0 if mode == "prefill" else cfg.max_seq_len - 1
        step = est["step"]
        macs = useful_macs(cfg, tokens, past) * cfg.num_layers
        out["modes"][mode] = {
            "estimate": est, "estimated_at": f"estimated at {clock_mhz:g} MHz, {link.label()}",
            "per_token_ms": step["total_s"] * 1e3 / tokens,
            "per_block_ms": [b["total_s"] * 1e3 for b in est["per_block"]],
            "mac_utilization": macs / (est["config"]["n"] ** 2 * step["cycles"]),
            "v1_measured_cpu": v1_measured(model, mode, cfg.max_seq_len, repeats),
            "estimate_wall_s_including_prefill": wall,
        }
    out["simulation"] = sim_speed(blocks, cfg)
    return out


def sim_speed(blocks, cfg) -> dict:
    """Simulated cycles per wall second of the Verilator fast build, prefill of one block."""
    import numpy as np

    from hw_offload.model_session import ModelSession
    s = ModelSession(blocks[:1], cfg.max_seq_len, 0, "verilator", progress=False)
    x = np.zeros((1, cfg.max_seq_len, cfg.hidden_size), dtype=np.int8)
    t0 = time.perf_counter()
    s.run_block(0, x, 0, keep_kv=False)
    wall = time.perf_counter() - t0
    cycles = sum(r.counters.cycles for r in s.records)
    busy = sum(r.counters.array_busy for r in s.records)
    s.close()
    return {"cycles": cycles, "wall_s": wall, "cycles_per_s": cycles / wall,
            "array_busy_fraction": busy / cycles}


def walkthrough(res: dict, deadline_ms: float) -> list[str]:
    """The README's step-by-step example, from tool output (tiny decode)."""
    tiny = next(p for p in res["presets"] if p["preset"] == "tiny")["modes"]["decode"]
    est = tiny["estimate"]
    step, blocks = est["step"], est["per_block"]
    b0 = blocks[0]
    link = res["link"]
    lines = [f"Example: one tiny decode token (batch 1, position 127), {tiny['estimated_at']}.", "",
             f"1. Bytes per block call: {b0['bytes_to_device']} to the device (weights streamed: "
             f"the SRAM plan says `{est['plan']['notes'][0] if est['plan']['notes'] else est['plan']['weights']}`), "
             f"{b0['bytes_from_device']} back, in {b0['transactions']} transactions.",
             f"2. Calls per token: {est['device_runs']} device runs for {len(blocks)} blocks.",
             f"3. Transfer time per token: {step['transactions']} x {link['latency_ns']:g} ns + "
             f"{step['bytes_to_device'] + step['bytes_from_device']} B / {link['bytes_per_s'] / 1e9:.3f} GB/s "
             f"= {step['link_s'] * 1e3:.4f} ms.",
             f"4. Compute: {step['cycles']} counted cycles = {step['compute_s'] * 1e3:.4f} ms at "
             f"{res['clock_mhz']:g} MHz; total {step['total_s'] * 1e3:.4f} ms per token "
             f"({1 / step['total_s']:.0f} tokens/s).",
             f"5. Under a {deadline_ms:g} ms per-token deadline the compute budget left after the "
             f"transfers is {deadline_ms - step['link_s'] * 1e3:.4f} ms; the counted compute "
             f"{'fits' if step['total_s'] * 1e3 <= deadline_ms else 'does not fit'} "
             f"({step['compute_s'] * 1e3:.4f} ms)."]
    return lines


def to_markdown(res: dict, deadline_ms: float) -> str:
    m = res["machine"]
    lines = ["# hw_offload: whole-model offload, estimated vs version 1 measured", "",
             f"Machine (measurements): {m['device_name']}, host {m['host']}, torch {m['torch']}, "
             f"git {m['git_sha']}. Accelerator numbers are ESTIMATED at {res['clock_mhz']:g} MHz "
             f"with {res['link']['label']}, from cycles counted by the Verilator fast build and "
             "bytes counted by the driver; batch 1; decoder blocks only. v1 (float, eager) is MEASURED "
             "on this CPU with 1 torch thread (median of benchmarks.timing repeats).", "",
             "| preset | mode | est. compute ms | est. transfer ms | est. total ms | est. per token ms | "
             "est. per block ms | v1 measured step ms (CPU) | v1 measured block ms (CPU) | MAC util. |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in res["presets"]:
        for mode, r in p["modes"].items():
            s = r["estimate"]["step"]
            lines.append(f"| {p['preset']} | {mode} | {s['compute_s'] * 1e3:.4f} | {s['link_s'] * 1e3:.4f} | "
                         f"{s['total_s'] * 1e3:.4f} | {r['per_token_ms']:.4f} | "
                         f"{', '.join(f'{x:.4f}' for x in r['per_block_ms'])} | "
                         f"{r['v1_measured_cpu']['step_ms']['median']:.4f} | "
                         f"{r['v1_measured_cpu']['block_ms']['median']:.4f} | {r['mac_utilization']:.1%} |")
    lines += ["", "## Counted cycles by unit (whole step, all blocks)", "", cb.MD_NOTE, "",
              "| preset | mode | " + " | ".join(cb.MD_HEAD) + " |",
              "|---|---|" + "---|" * len(cb.MD_HEAD)]
    for p in res["presets"]:
        for mode, r in p["modes"].items():
            lines.append(f"| {p['preset']} | {mode} | "
                         + " | ".join(cb.md_cells(r["estimate"]["unit_cycles"])) + " |")
    lines += ["", "Weights: " + "; ".join(f"{p['preset']}: {p['modes']['prefill']['estimate']['plan']['weights']}"
                                          + "".join(f" ({n})" for n in p['modes']['prefill']['estimate']['plan']['notes'])
                                          for p in res["presets"]), "",
              "## Simulation speed (measured)", "", "| preset | simulated cycles | wall s | cycles/s | array busy |",
              "|---|---|---|---|---|"]
    for p in res["presets"]:
        s = p["simulation"]
        lines.append(f"| {p['preset']} | {s['cycles']} | {s['wall_s']:.3f} | {s['cycles_per_s']:.3g} | "
                     f"{s['array_busy_fraction']:.1%} |")
    lines += ["", "## Walk-through", ""] + walkthrough(res, deadline_ms) + [""]
    return "\n".join(lines)


README = REPO_ROOT / "hw_offload" / "README.md"
WALK_BEGIN = "<!-- walkthrough:begin (generated by `python -m benchmarks.hw.bench_offload --update-readme`; do not edit) -->"
WALK_END = "<!-- walkthrough:end -->"


def walkthrough_section(results_md: str) -> str:
    """The '## Walk-through' section's body of an offload_bench.md."""
    body = results_md.split("## Walk-through", 1)[1]
    return body.split("\n## ", 1)[0].strip()


def sync_readme(results_md: str, readme: Path = README) -> bool:
    """Put the run's walk-through between the README's markers; True when the file changed.

    The README's worked example is thereby always the tool's output of the committed run.
    """
    text = readme.read_text()
    if WALK_BEGIN not in text or WALK_END not in text:
        raise ValueError(f"{readme} lacks the walk-through markers {WALK_BEGIN!r} / {WALK_END!r}")
    head, rest = text.split(WALK_BEGIN, 1)
    tail = rest.split(WALK_END, 1)[1]
    new = f"{head}{WALK_BEGIN}\n{walkthrough_section(results_md)}\n{WALK_END}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv=None) -> None:
    cpu = torch.device("cpu")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="default: results/<date-time>/hw; to refresh the committed results "
                         "pass --out benchmarks/results/<machine>/hw")
    ap.add_argument("--clock-mhz", type=float, default=200.0)
    ap.add_argument("--deadline-ms", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--update-readme", action="store_true",
                    help="copy this run's walk-through into hw_offload/README.md (only when "
                         "refreshing the committed results; off by default)")
    args = ap.parse_args(argv)
    args.out = args.out or default_out("hw")
    link = HostLink()
    torch.set_num_threads(1)
    res = {"machine": machine_info(cpu), "clock_mhz": args.clock_mhz, "torch_threads": 1,
           "link": {"label": link.label(), "gen": link.gen, "lanes": link.lanes,
                    "latency_ns": link.latency_ns, "bytes_per_s": link.bytes_per_s},
           "presets": [bench(p, args.clock_mhz, link, args.repeats) for p in ("chip16", "tiny")]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "offload_bench.json").write_text(json.dumps(res, indent=2))
    md = to_markdown(res, args.deadline_ms)
    (args.out / "offload_bench.md").write_text(md)
    print(md)
    print(f"wrote {args.out}/offload_bench.json and offload_bench.md")
    if args.update_readme and sync_readme(md):
        print(f"updated the worked example in {README}")


if __name__ == "__main__":
    main()
