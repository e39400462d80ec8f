"""Every analysis exercise's check: the expected answer recomputed from the learner's run.

Each check takes the run folder the exercise's command wrote and returns an ``Expected``:
a number with its tolerance, or the accepted choices, and the files and fields it came
from. Nothing here is a hard-coded answer: the same check holds on any machine.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class RunError(ValueError):
    """The run folder does not hold what the exercise's command writes."""


@dataclass
class Expected:
    source: str                      # where the value came from: files and fields
    value: float | None = None       # number exercises
    rel_tol: float = 0.0
    abs_tol: float = 0.0
    accepted: frozenset[str] = field(default_factory=frozenset)   # choice exercises
    choices: tuple[str, ...] = ()

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)

    def tolerance(self) -> str:
        parts = ([f"{100 * self.rel_tol:g}%"] if self.rel_tol else []) + \
            ([f"{self.abs_tol:g}"] if self.abs_tol else [])
        return " or ".join(parts) if parts else "exact"


def judge(exp: Expected, answer: str) -> tuple[bool, str]:
    """(correct, message). A choice is compared case-insensitively; a number within
    ``max(abs_tol, rel_tol * |expected|)``."""
    answer = answer.strip()
    if exp.is_choice:
        given = answer.lower()
        if given not in exp.choices:
            raise ValueError(f"answer {answer!r} is not one of the choices {', '.join(exp.choices)}")
        return given in exp.accepted, f"choice {given!r}; checked against {exp.source}"
    try:
        given_f = float(answer)
    except ValueError:
        raise ValueError(f"answer {answer!r} is not a number") from None
    if not math.isfinite(given_f):
        raise ValueError(f"answer {answer!r} is not a finite number")
    tol = max(exp.abs_tol, exp.rel_tol * abs(exp.value))
    ok = abs(given_f - exp.value) <= tol
    return ok, f"{given_f:g} (tolerance {exp.tolerance()}); checked against {exp.source}"


def load(run: Path, name: str) -> dict:
    """``run/name``, or the single ``run/*/name`` (a version's sub-folder)."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"--run {run}: no such folder; pass the folder the exercise's command wrote")
    path = run / name
    if not path.is_file():
        found = sorted(run.glob(f"*/{name}"))
        if len(found) != 1:
            raise RunError(f"{run} holds no {name} (nor exactly one */{name}): run the exercise's "
                           "command with --out pointing there")
        path = found[0]
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------- v1
def v1_blocks(run: Path) -> Expected:
    s = load(run, "profile_summary.json")
    blocks = s.get("block_ms") or {}
    if not {"attention", "mlp", "final_norm"} <= set(blocks):
        raise RunError(f"profile_summary.json has block_ms {sorted(blocks)}; expected attention, "
                       "mlp and final_norm (profile version 1, whose model records those ranges)")
    share = blocks["attention"] / sum(blocks[k] for k in ("attention", "mlp", "final_norm"))
    return Expected(f"{s['version']}/profile_summary.json block_ms: attention / "
                    "(attention + mlp + final_norm)", share, abs_tol=0.01)


def _flops(run: Path) -> tuple[dict, float]:
    s = load(run, "profile_summary.json")
    f = s["flops"]
    if not f.get("deepspeed_forward_flops"):
        raise RunError("the DeepSpeed FLOPS profiler did not run (deepspeed_forward_flops is "
                       "empty): install the 'profile' extra and profile again")
    return s, f["step_flops"] / f["deepspeed_forward_flops"]


def v1_flops(run: Path) -> Expected:
    s, ratio = _flops(run)
    return Expected(f"{s['version']}/profile_summary.json flops: step_flops / "
                    "deepspeed_forward_flops", ratio, rel_tol=0.02)


FLOPS_WHY = ("backward", "elementwise", "same")


def v1_flops_why(run: Path) -> Expected:
    # backward: torch's counter saw a backward pass (~2x the forward's matmul FLOPs) that
    # DeepSpeed's forward hooks never see; elementwise: same pass, DeepSpeed also counts
    # the non-matmul functionals that FlopCounterMode ignores; same: they agree (<1%).
    s, ratio = _flops(run)
    answer = "backward" if ratio > 1.5 else "elementwise" if ratio < 0.99 else "same"
    return Expected(f"{s['version']}/profile_summary.json ({s['mode']}): step_flops / "
                    f"deepspeed_forward_flops = {ratio:.3f}", accepted=frozenset({answer}),
                    choices=FLOPS_WHY)


def v1_kvcache(run: Path) -> Expected:
    dec, pre = load(run, "decode.json"), load(run, "prefill.json")
    for r, mode in ((dec, "decode"), (pre, "prefill")):
        if r.get("mode") != mode:
            raise RunError(f"{mode}.json records mode {r.get('mode')!r}; run it with --mode {mode}")
    if (dec["preset"], dec["seq_len"], dec["batch_size"]) != (pre["preset"], pre["seq_len"],
                                                               pre["batch_size"]):
        raise RunError("decode.json and prefill.json differ in preset, seq_len or batch: run both "
                       "with the same flags")
    ratio = pre["step_time_ms"]["median"] / dec["step_time_ms"]["median"]
    return Expected("prefill.json / decode.json step_time_ms.median", ratio, rel_tol=0.02)


# ---------------------------------------------------------------- v2
FUSIONS = ("qkv", "gate_up", "sdpa", "rms_norm", "rope_qk")


def v2_ablation(run: Path) -> Expected:
    rows = {f: load(run, f"prefill_v2_{f}_only.json")["step_time_ms"] for f in FUSIONS}
    best = min(rows, key=lambda f: rows[f]["median"])
    # Ties within noise: any fusion whose p10 reaches the best median is as good as measured.
    accepted = frozenset(f for f, t in rows.items() if t["p10"] <= rows[best]["median"])
    return Expected("prefill_v2_<fusion>_only.json step_time_ms: the lowest median, and any "
                    "fusion whose p10 is at or below it", accepted=accepted, choices=FUSIONS)


SDPA_CHOICES = {"flash": "flash", "flash (CPU kernel)": "flash-cpu",
                "memory-efficient": "memory-efficient", "cuDNN": "cudnn", "math": "math"}


def v2_sdpa(run: Path) -> Expected:
    r = load(run, "prefill_v2_sdpa_only.json")
    seen = r["extra"].get("sdpa_backend", "")
    accepted = frozenset(SDPA_CHOICES[b.strip()] for b in seen.split(" + ")
                         if b.strip() in SDPA_CHOICES)
    if not accepted:
        raise RunError(f"prefill_v2_sdpa_only.json names backend {seen!r}: none of "
                       f"{sorted(SDPA_CHOICES)} ran")
    return Expected("prefill_v2_sdpa_only.json extra.sdpa_backend", accepted=accepted,
                    choices=tuple(SDPA_CHOICES.values()))


# ---------------------------------------------------------------- v3
def _compile_rows(run: Path, dtype: str) -> list[dict]:
    rows = [r for r in load(run, "compile.json")["rows"]
            if r["version"] == "v3" and r["kernel"] == "flash_attention._fwd_kernel"
            and r["target"] == "sm_90" and r["dtype"] == dtype and r["mode"] == "train"
            and r["status"] != "error"]
    if not rows:
        raise RunError(f"compile.json has no v3 train {dtype} flash_attention._fwd_kernel row for "
                       "sm_90: run the exercise's compile_gate command")
    return rows


def v3_compile_spill(run: Path) -> Expected:
    spill = max(r["spill_bytes"] or 0 for r in _compile_rows(run, "fp32"))
    return Expected("compile.json: v3 train fp32 flash_attention._fwd_kernel sm_90 "
                    "spill_bytes (largest launch)", float(spill))


def v3_compile_tc(run: Path) -> Expected:
    tc = max(r["tc_instr"] or 0 for r in _compile_rows(run, "bf16"))
    return Expected("compile.json: v3 train bf16 flash_attention._fwd_kernel sm_90 tc_instr "
                    "(largest launch)", float(tc))


# ---------------------------------------------------------------- v4
def v4_launches(run: Path) -> Expected:
    r = load(run, "kernel_count.json")
    layers = r["num_layers"]
    if "versions" in r:        # a GPU: device kernels counted by the profiler
        counts = {v: r["versions"].get(v, {}).get("forward") for v in ("v3", "v4")}
        source = "kernel_count.json versions.{v3,v4}.forward (device kernels)"
    elif "launches" in r:      # no GPU: Triton calls + kernel-launching torch ops, interpreter
        counts = {v: r["launches"].get(v, {}).get("forward") for v in ("v3", "v4")}
        source = ("kernel_count.json launches.{v3,v4}.forward (Triton calls + torch ops that "
                  "launch a kernel, counted in the interpreter)")
    else:
        raise RunError("kernel_count.json has neither device counts (versions) nor interpreter "
                       "counts (launches): run the exercise's kernel_count command again")
    if None in counts.values():
        raise RunError("kernel_count.json must count both v3 and v4")
    return Expected(f"{source}: (v3 - v4) / num_layers",
                    (counts["v3"] - counts["v4"]) / layers, abs_tol=0.5)


def v4_floor(run: Path) -> Expected:
    r = load(run, "results.json")
    copy = r["machine"].get("ceilings", {}).get("copy_bytes_per_s")
    rows = [row for row in r["rows"] if row["mode"] == "decode" and row["status"] == "ok"
            and row.get("bytes_min_traffic_model")]
    if not copy or not rows:
        raise RunError("results.json needs the measured copy ceiling and an ok decode row with "
                       "bytes_min_traffic_model: run the exercise's benchmarks command")
    floor_us = rows[0]["bytes_min_traffic_model"] / copy * 1e6
    return Expected("results.json: rows[decode].bytes_min_traffic_model / "
                    "machine.ceilings.copy_bytes_per_s, in microseconds", floor_us, rel_tol=0.03)


# ---------------------------------------------------------------- hw
def _hw_run(run: Path, side: str) -> dict:
    r = load(run, "cycles.json")
    if side not in r["runs"]:
        raise RunError(f"cycles.json has no {side} run: run exercises.hw_cycles with --set "
                       "FIELD=VALUE to measure a changed configuration next to the baseline")
    return r["runs"][side]


def hw_cycles(run: Path) -> Expected:
    c = _hw_run(run, "baseline")["counters"]
    return Expected("cycles.json runs.baseline.counters: array_busy / cycles",
                    c["array_busy"] / c["cycles"], abs_tol=0.005)


def hw_param(run: Path) -> Expected:
    base, changed = _hw_run(run, "baseline"), _hw_run(run, "changed")
    return Expected(f"cycles.json runs.baseline.counters.cycles / runs.changed.counters.cycles "
                    f"({changed['config']['name']})",
                    base["counters"]["cycles"] / changed["counters"]["cycles"], rel_tol=0.05)


def hw_link(run: Path) -> Expected:
    from hw_offload.cost import HostLink
    from hw_offload.device_counters import LinkCounters

    r = load(run, "link.json")
    host = HostLink()
    per_token = {}
    for mode in ("resident", "streamed"):
        m = r["modes"][mode]
        per_token[mode] = host.seconds(LinkCounters(**m["decode_link"])) / m["decode_tokens"]
    extra_us = (per_token["streamed"] - per_token["resident"]) * 1e6
    return Expected("link.json modes.{streamed,resident}.decode_link priced by "
                    f"hw_offload.cost.HostLink() ({host.label()}), per decode token, in "
                    "microseconds", extra_us, rel_tol=0.01)


def hw_wave(run: Path) -> Expected:
    c = load(run, "counters.json")
    return Expected("counters.json array_busy (the gemm_busy cycles of the traced run)",
                    float(c["array_busy"]), abs_tol=1)


CHECKS: dict[str, Callable[[Path], Expected]] = {
    "v1-blocks": v1_blocks, "v1-flops": v1_flops, "v1-flops-why": v1_flops_why,
    "v1-kvcache": v1_kvcache, "v2-ablation": v2_ablation, "v2-sdpa": v2_sdpa,
    "v3-compile-spill": v3_compile_spill, "v3-compile-tc": v3_compile_tc,
    "v4-launches": v4_launches, "v4-floor": v4_floor,
    "hw-cycles": hw_cycles, "hw-param": hw_param, "hw-link": hw_link, "hw-wave": hw_wave,
}
