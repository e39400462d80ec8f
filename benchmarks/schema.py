"""The JSON result schema every version writes (``python -m versionN_* --json``).

One record per (version, preset, mode) run. ``validate`` is what the tests and the
harness use to reject malformed files; ``validate_kernels`` checks the per-kernel records
the side-by-side harness stores on its rows.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# 2: adds world_size, parallel, sharding, backend, peak_memory_per_rank (issue 14).
# Version-1 records (one process) still validate: the new fields take their defaults.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MODES = ("train", "prefill", "decode")


@dataclass
class RunResult:
    version: str                      # "v1", "v2", ...
    preset: str                       # preset name, or "custom"
    mode: str                         # one of MODES
    batch_size: int
    seq_len: int                      # train/prefill: tokens per sequence; decode: prompt length
    dtype: str                        # compute dtype, e.g. "fp32" or "bf16 (autocast)"
    config: dict                      # TinyLlamaConfig.to_dict()
    machine: dict                     # benchmarks.environment.machine_info()
    step_time_ms: dict                # benchmarks.timing.summarize(): median, p10, p90, min, max, n
    warmup: int
    tokens_per_step: int
    tokens_per_s: float               # tokens_per_step / median step time
    peak_memory_bytes: int | None     # true peak during one step; None where not measurable
    peak_memory_method: str           # how the peak was measured (or why it was not)
    kernel_launches_per_step: int | None  # device kernels counted by the profiler (GPU only)
    ops_per_step: int | None          # top-level aten operator calls counted by the profiler
    first_loss: float | None = None   # train mode: loss of the first step (warm-up included)
    last_loss: float | None = None    # train mode: loss of the last step
    # train mode: the corpus's entropy floor at this seq_len (MarkovCorpus.loss_floor), the
    # lowest expected loss any model can reach on fresh batches; a loss below it is noise
    loss_floor: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)   # version-specific facts (e.g. SDPA backend)
    # benchmarks.noise: load just before/after timing, and why the time may not be the quiet
    # speed ([] when nothing says so); when, and whether it was a smoke run
    load: dict = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    timestamp: str = ""               # ISO-8601 local time of the measurement
    quick: bool = False               # a smoke run with few steps: not for reporting
    world_size: int = 1               # processes that trained together (torchrun ranks)
    parallel: str = "none"            # engine: "none", "ddp" or "fsdp"
    sharding: str = "none: one process holds everything"   # what each rank holds
    backend: str | None = None        # process-group backend ("gloo", "nccl"); None alone
    peak_memory_per_rank: list | None = None   # bytes per rank, rank order; peak_memory_bytes
                                               # is their maximum
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    def write(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")


_REQUIRED = {
    "version": str, "preset": str, "mode": str, "batch_size": int, "seq_len": int,
    "dtype": str, "config": dict, "machine": dict, "step_time_ms": dict, "warmup": int,
    "tokens_per_step": int, "tokens_per_s": float, "peak_memory_method": str,
    "notes": list, "extra": dict, "schema_version": int,
}
_MACHINE_KEYS = ("device", "device_name", "torch", "triton", "git_sha")
_TIME_KEYS = ("median", "p10", "p90", "n")


def validate(record: dict) -> dict:
    """Raise ValueError naming the first problem; return the record when it is well formed."""
    for key, typ in _REQUIRED.items():
        if key not in record:
            raise ValueError(f"result is missing {key!r}")
        value = record[key]
        ok = isinstance(value, (int, float)) if typ is float else isinstance(value, typ)
        if not ok or (typ is int and isinstance(value, bool)):
            raise ValueError(f"result field {key!r} should be {typ.__name__}, got {value!r}")
    if record["schema_version"] not in READABLE_VERSIONS:
        raise ValueError(f"schema_version {record['schema_version']} is not one of "
                         f"{READABLE_VERSIONS}")
    if record["schema_version"] >= 2:
        _validate_parallel(record)
    if record["mode"] not in MODES:
        raise ValueError(f"mode {record['mode']!r} not one of {MODES}")
    for key in _MACHINE_KEYS:
        if key not in record["machine"]:
            raise ValueError(f"machine description is missing {key!r}")
    for key in _TIME_KEYS:
        if key not in record["step_time_ms"]:
            raise ValueError(f"step_time_ms is missing {key!r}")
    t = record["step_time_ms"]
    if not 0 < t["p10"] <= t["median"] <= t["p90"]:
        raise ValueError(f"step times are not ordered p10 <= median <= p90: {t}")
    if record["tokens_per_s"] <= 0:
        raise ValueError("tokens_per_s must be positive")
    for key in ("peak_memory_bytes", "kernel_launches_per_step", "ops_per_step"):
        value = record.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{key} must be a non-negative int or null, got {value!r}")
    # Added after the first results were committed: optional, but well formed when present.
    for key, typ in (("load", dict), ("busy", list), ("timestamp", str), ("quick", bool)):
        if key in record and not isinstance(record[key], typ):
            raise ValueError(f"result field {key!r} should be {typ.__name__}, "
                             f"got {record[key]!r}")
    if record["mode"] == "train":
        for key in ("first_loss", "last_loss"):
            if not isinstance(record.get(key), (int, float)):
                raise ValueError(f"train result needs a numeric {key}")
    return record


def _validate_parallel(record: dict) -> None:
    """The version-2 fields: a world of >= 1 ranks, a known engine, one peak per rank."""
    world = record.get("world_size")
    if not isinstance(world, int) or isinstance(world, bool) or world < 1:
        raise ValueError(f"world_size must be a positive int, got {world!r}")
    if record.get("parallel") not in ("none", "ddp", "fsdp"):
        raise ValueError(f"parallel must be none, ddp or fsdp, got {record.get('parallel')!r}")
    if record["parallel"] == "none" and world != 1:
        raise ValueError(f"parallel 'none' with world_size {world}")
    if not isinstance(record.get("sharding"), str):
        raise ValueError("result needs a sharding description (str)")
    peaks = record.get("peak_memory_per_rank")
    if peaks is not None:
        if not isinstance(peaks, list) or len(peaks) != world:
            raise ValueError(f"peak_memory_per_rank needs one entry per rank ({world}), "
                             f"got {peaks!r}")
        for p in peaks:
            if p is not None and (not isinstance(p, int) or isinstance(p, bool) or p < 0):
                raise ValueError(f"peak_memory_per_rank entries must be non-negative ints or "
                                 f"null, got {p!r}")


def load(path) -> dict:
    """Read and validate one result file."""
    with open(path) as f:
        return validate(json.load(f))


_KERNEL_KEYS = {"name": str, "calls": int, "time_ms": float, "flops": int, "flops_source": str,
                "bytes": int}
_KERNEL_NULLABLE = ("flops", "flops_source", "bytes")


def validate_kernels(records: list) -> list:
    """Check the harness's per-kernel records (``benchmarks.kernel_points``); return them.

    Raises ValueError naming the record and field. FLOPs, their source and bytes may be
    null (not counted / not modelled); name, calls and a time may not.
    """
    if not isinstance(records, list):
        raise ValueError(f"kernels should be a list of records, got {type(records).__name__}")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"kernels[{i}] should be a dict, got {record!r}")
        for key, typ in _KERNEL_KEYS.items():
            if key not in record:
                raise ValueError(f"kernels[{i}] is missing {key!r}")
            value = record[key]
            if value is None and key in _KERNEL_NULLABLE:
                continue
            ok = isinstance(value, (int, float)) if typ is float else isinstance(value, typ)
            if not ok or (typ is not str and isinstance(value, bool)):
                raise ValueError(f"kernels[{i}] field {key!r} should be {typ.__name__}, "
                                 f"got {value!r}")
        if record["calls"] < 1 or record["time_ms"] < 0:
            raise ValueError(f"kernels[{i}] ({record['name']}) needs calls >= 1 and time_ms "
                             f">= 0, got {record['calls']} and {record['time_ms']}")
        for key in ("flops", "bytes"):
            if record[key] is not None and record[key] < 0:
                raise ValueError(f"kernels[{i}] ({record['name']}) has negative {key}")
        if (record["flops"] is None) != (record["flops_source"] is None):
            raise ValueError(f"kernels[{i}] ({record['name']}): flops and flops_source must be "
                             "both set or both null")
    return records
