"""Every selected version side by side: gate against v1, time interleaved, count, tabulate.

This is ``python -m benchmarks run``. All versions of one (preset, mode) are timed in
the same loop, round-robin (v1, v2, v3, v1, v2, v3, ...), so machine noise falls on
all of them alike and the speedups are ratios measured side by side.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch

from version1_baseline import TinyLlama, get_preset

from .environment import synchronize
from .gate import check_against_v1
from .kernel_points import profile_kernels, runs_in_interpreter
from .noise import WINDOW_S, LoadWatch
from .roofline import minimum_bytes
from .runner import result_from_times
from .schema import RunResult, validate_kernels
from .timing import time_interleaved
from .validation import check_workload
from .versions import Unavailable, build_model, describe_run, load_spec
from .workloads import UNTIMED_STEPS, dtype_label, make_workload


@dataclass
class Row:
    """One line of the speedup table (results.json / .csv rows): a measured row's numbers
    come from a ``RunResult`` (``take``), with the table's own columns (status, speedup,
    gate error, achieved rates, kernels) beside them."""
    version: str
    preset: str
    mode: str
    status: str    # "ok", "estimated" (rtl), "FAILED" (gate), "ERROR" (raised), "n/a" (cannot run)
    detail: str = ""
    dtype: str = ""
    batch_size: int | None = None
    seq_len: int | None = None
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    repeats: int | None = None
    tokens_per_s: float | None = None
    speedup_vs_v1: float | None = None
    peak_memory_bytes: int | None = None
    kernel_launches_per_step: int | None = None
    ops_per_step: int | None = None
    gate_relative_error: float | None = None
    estimated_compute_ms: float | None = None  # rtl rows: accelerator compute at its clock
    estimated_transfer_ms: float | None = None  # rtl rows: host-link time
    workload_flops: int | None = None          # counted on v1 eager: the work, not the method
    achieved_flops_per_s: float | None = None  # workload_flops / median time
    fraction_of_matmul_ceiling: float | None = None   # vs matmul_ceiling_flops_per_s
    # best-of-N matmul rate measured just before this row's group was timed; a fraction
    # above 1 means the ceiling did not bound this workload (the table flags it)
    matmul_ceiling_flops_per_s: float | None = None
    # benchmarks.roofline.minimum_bytes: the traffic a step cannot avoid - a MODEL of the
    # bytes, not a measurement - and that model divided by the measured median
    bytes_min_traffic_model: int | None = None
    model_bytes_per_s: float | None = None
    extra: dict = field(default_factory=dict)
    # benchmarks.kernel_points: per-op (CPU) / per-kernel (GPU) records of one extra profiled
    # step, and that step's wall time (profiler overhead included, unlike median_ms)
    kernels: list = field(default_factory=list)
    kernel_step_ms: float | None = None
    # benchmarks.noise: the machine's load just before and after the timed loop, and why
    # this row's time should not be read as the quiet speed ([] when nothing says so)
    load: dict = field(default_factory=dict)
    busy: list = field(default_factory=list)
    # What makes rows from different runs comparable (set by the harness for the whole run)
    machine: str = ""
    torch: str = ""
    triton: str | None = None
    git_sha: str = ""
    timestamp: str = ""
    quick: bool = False

    def take(self, result: RunResult) -> None:
        """Fill this row's measured columns from ``result`` (``runner.result_from_times``).

        The row is the speedup table's view of a ``RunResult``: times, throughput, counts,
        peak memory and noise flags are copied, never computed here, so a row and a
        per-version run of the same timings agree field by field.
        """
        t = result.step_time_ms
        self.median_ms, self.p10_ms, self.p90_ms, self.repeats = (
            t["median"], t["p10"], t["p90"], t["n"])
        self.tokens_per_s = result.tokens_per_s
        self.peak_memory_bytes = result.peak_memory_bytes
        self.kernel_launches_per_step = result.kernel_launches_per_step
        self.ops_per_step = result.ops_per_step
        self.load, self.busy = result.load, result.busy

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> "Row":
        """A row read back from results.json; files written before a field existed still load."""
        validate_kernels(record.get("kernels", []))
        return cls(**record)


@dataclass
class BenchSettings:
    steps: int = 10
    warmup: int = 3
    seq_len: int | None = None        # default: the preset's max_seq_len
    batch_size: int | None = None     # default: the preset's batch
    dtype: torch.dtype = torch.float32
    allow_interpreter: bool = False
    seed: int = 0
    matmul_ceiling: float | None = None   # FLOP/s measured on this device (benchmarks.ceilings)
    load_window_s: float = WINDOW_S       # how long each load snapshot watches other processes
    # measures the matmul ceiling again (best of several) just before each mode's rows are
    # timed; when set it replaces matmul_ceiling for those rows
    matmul_ceiling_fn: Callable[[], float] | None = None
    # caps the preset's DEFAULT seq_len (quick runs); an explicit seq_len is never capped
    default_seq_cap: int | None = None
    hw_config: str = "chip16"         # accelerator configuration of the rtl rows (hw_offload.configs)


def workload_shape(preset: str, modes: list[str], settings: BenchSettings,
                   flags: bool = False) -> tuple[int, int]:
    """(batch, seq_len) of ``preset``'s rows; ``UserError`` for a preset, mode or setting out
    of range (``flags``: name them as ``benchmarks run`` flags).

    An explicit setting is used as given, never clamped: a seq_len above the preset's
    max_seq_len is an error, not a shorter run.
    """
    cfg = get_preset(preset)
    batch = cfg.batch_size if settings.batch_size is None else settings.batch_size
    seq = (settings.seq_len if settings.seq_len is not None
           else min(cfg.max_seq_len, settings.default_seq_cap or cfg.max_seq_len))
    check_workload(modes=modes, batch_size=batch, seq_len=seq, steps=settings.steps,
                   warmup=settings.warmup, max_seq_len=cfg.max_seq_len,
                   where=f"preset {preset}", flags=flags)
    return batch, seq


def _build(name: str, preset: str, device: torch.device, state: dict, settings: BenchSettings):
    """The version's model holding v1's weights, prepared (e.g. compiled); may raise."""
    spec = load_spec(name, device, allow_interpreter=settings.allow_interpreter)
    model = build_model(spec, get_preset(preset), state, device, dtype=settings.dtype)
    return spec, model


def _time_all(works, rows, device, settings) -> dict[str, list[float]]:
    """Interleaved timing of every workload; a version that raises is marked ERROR and the
    others are timed again without it, so one broken version never hides the rest."""
    while works:
        try:
            return time_interleaved({n: w.step for n, w in works.items()}, device,
                                    warmup=settings.warmup, repeats=settings.steps)
        except Exception:
            culprit = None
            for name, work in works.items():
                try:
                    work.step()
                except Exception as exc:
                    culprit = name
                    rows[name].status, rows[name].detail = "ERROR", f"{type(exc).__name__}: {exc}"
                    break
            if culprit is None:
                raise
            works = {n: w for n, w in works.items() if n != culprit}
    return {}


def _workload_flops(reference, mode, batch, seq, device, settings) -> int:
    """FLOPs of one step of ``mode``, counted on version 1 in eager mode.

    The same number serves every version: it is the work the step must do, so dividing
    it by each version's time gives comparable achieved rates (as MFU does).
    """
    from .profiling.flops import count_flops_torch
    work = make_workload(reference, mode, batch, seq, device, settings.dtype, seed=settings.seed)
    return count_flops_torch(work.step)


def run_preset(names: list[str], preset: str, modes: list[str], device: torch.device,
               settings: BenchSettings, progress=None, advance=None) -> list[Row]:
    """All rows for one preset: one per (mode, version).

    ``progress(text)`` is called before each stage; ``advance(n)`` each time n of the
    (mode, version) rows are finished, ``len(modes) * len(names)`` in all. A bad preset,
    mode or setting raises ``UserError`` before anything is built.
    """
    say = progress or (lambda text: None)
    step = advance or (lambda n: None)
    batch, seq = workload_shape(preset, modes, settings)
    cfg = get_preset(preset)
    torch.manual_seed(settings.seed)
    reference = TinyLlama(cfg).to(device)
    state = {k: v.detach().cpu().clone() for k, v in reference.to_hf_state_dict().items()}

    rows: dict[str, Row] = {}
    models = {}
    for name in names:
        if name == "rtl":
            continue    # estimated, not timed: added after the measured rows
        say(f"{preset}: build + gate {name}")
        try:
            spec, model = _build(name, preset, device, state, settings)
        except Unavailable as exc:
            rows[name] = Row(name, preset, "*", "n/a", str(exc))
            continue
        except ValueError as exc:
            # Raised while building: this version does not support the preset's shape
            # (e.g. a head_dim outside a kernel's range). Not a bug; say what the limit is.
            rows[name] = Row(name, preset, "*", "n/a", f"unsupported here: {exc}")
            continue
        except Exception as exc:
            rows[name] = Row(name, preset, "*", "ERROR", f"{type(exc).__name__}: {exc}")
            continue
        try:
            gate = check_against_v1(model, reference, device, seed=settings.seed)
        except Exception as exc:
            rows[name] = Row(name, preset, "*", "ERROR", f"{type(exc).__name__}: {exc}")
            continue
        if not gate.passed:
            rows[name] = Row(name, preset, "*", "FAILED", "correctness gate: " + gate.detail,
                             gate_relative_error=gate.relative_error)
            continue
        models[name] = (spec, model, gate)

    out: list[Row] = []
    for mode in modes:
        out += [replace(r, mode=mode) for r in rows.values()]
        step(len(rows))
        works, mode_rows = {}, {}
        for name, (spec, model, gate) in models.items():
            base = Row(name, preset, mode, "ok", dtype=dtype_label(settings.dtype),
                       batch_size=batch, seq_len=seq, gate_relative_error=gate.relative_error,
                       extra=describe_run(spec, model, mode=mode, batch_size=batch,
                                          seq_len=seq, device=device, dtype=settings.dtype))
            try:
                # Each mode starts from the same weights: a train mode before it updated them.
                model.load_hf_state_dict(state)
                works[name] = make_workload(
                    model, mode, batch, seq, device, settings.dtype, seed=settings.seed,
                    loss_fn=spec.loss_fn,
                    train_batches=settings.warmup + settings.steps + UNTIMED_STEPS)
                mode_rows[name] = base
            except Exception as exc:
                base.status, base.detail = "ERROR", f"{type(exc).__name__}: {exc}"
                out.append(base)
                step(1)
        if not works:
            continue
        ceiling = settings.matmul_ceiling
        if settings.matmul_ceiling_fn is not None:
            say(f"{preset}/{mode}: matmul ceiling")
            ceiling = settings.matmul_ceiling_fn()
        say(f"{preset}/{mode}: timing {', '.join(works)} interleaved")
        with LoadWatch(settings.load_window_s) as watch:
            times = _time_all(works, mode_rows, device, settings)
        for name, row in mode_rows.items():
            if row.status != "ok":
                out.append(row)
                step(1)
                continue
            say(f"{preset}/{mode}: counting {name}")
            row.take(result_from_times(
                models[name][1], works[name], times[name], version=name, preset=preset,
                batch_size=batch, seq_len=seq, device=device, dtype=settings.dtype,
                warmup=settings.warmup, extra=row.extra, load=watch.record))
            if not runs_in_interpreter(row.extra):   # interpreter times place nothing
                row.kernels, row.kernel_step_ms = profile_kernels(works[name].step, device)
            synchronize(device)
            out.append(row)
            step(1)
        flops = _workload_flops(reference, mode, batch, seq, device, settings)
        for row in out:
            if row.mode == mode and row.status == "ok":
                row.workload_flops = flops
                row.achieved_flops_per_s = flops / (row.median_ms / 1e3)
                # fp32 weights: autocast (bf16/fp16 rows) keeps fp32 parameters and reads them
                # to cast; the same model as roofline.png's x axis
                row.bytes_min_traffic_model = minimum_bytes(cfg.to_dict(), mode, batch, seq)
                row.model_bytes_per_s = row.bytes_min_traffic_model / (row.median_ms / 1e3)
                if ceiling:
                    row.matmul_ceiling_flops_per_s = ceiling
                    row.fraction_of_matmul_ceiling = row.achieved_flops_per_s / ceiling
    if "rtl" in names:
        say(f"{preset}: rtl estimate (Verilator, {settings.hw_config})")
        out += rtl_rows(preset, modes, state, batch, seq, settings.hw_config)
        step(len(modes))
    for mode in modes:
        base_ms = next((r.median_ms for r in out
                        if r.version == "v1" and r.mode == mode and r.status == "ok"), None)
        for row in out:
            if row.mode == mode and row.status in ("ok", "estimated") and base_ms:
                row.speedup_vs_v1 = base_ms / row.median_ms
    # Table order: by mode, then in the order the versions were asked for.
    return sorted(out, key=lambda r: (modes.index(r.mode), names.index(r.version)))


def rtl_rows(preset: str, modes: list[str], state: dict, batch: int, seq: int,
             hw_config: str = "chip16") -> list[Row]:
    """The accelerator's rows (configuration ``hw_config``, hw_offload.configs): times ESTIMATED
    at its clock from cycles counted in simulation.

    Status "estimated" keeps them apart from measured rows in every table and plot.
    """
    try:
        from .rtl_estimate import estimate_rows
        estimates = estimate_rows(preset, modes, state, batch, seq, config=hw_config)
    except ImportError as exc:
        return [Row("rtl", preset, m, "n/a", f"hw_offload not importable: {exc}") for m in modes]
    except Exception as exc:
        return [Row("rtl", preset, m, "ERROR", f"{type(exc).__name__}: {exc}") for m in modes]
    rows = []
    for est in estimates:
        ok = est["status"] == "ok"
        rows.append(Row(
            "rtl", preset, est["mode"], "estimated" if ok else "n/a", est["detail"],
            dtype="int8 (accelerator)", batch_size=batch, seq_len=seq,
            median_ms=est["median_ms"], tokens_per_s=est["tokens_per_s"],
            estimated_compute_ms=est["compute_ms"], estimated_transfer_ms=est["transfer_ms"],
            extra={"clock_mhz": est["clock_mhz"], "target": est["target"],
                   "hw_config": est["config"],
                   "unit_cycles": est.get("unit_cycles")}))
    return rows
