"""How busy the machine was around a measurement, and whether that makes the number suspect.

A time measured while other processes compete for the cores can be many times the quiet
time, with a tight p10-p90 all the same (every repeat was equally starved). So each timed
block is bracketed by two ``load_snapshot`` calls, recorded with the result, and
``busy_reasons`` turns them and the spread into the flags the table, plots and CLI show.

Everything comes from ``/proc`` (Linux); elsewhere the per-process share is ``None`` and
only the load average (where the OS has one) is used.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

# Flag thresholds. The limits are loose on purpose: a flag should mean "this number is not
# the machine's quiet speed", not "the timer jittered".
SPREAD_LIMIT = 1.5        # p90 / p10 above this: repeats disagree by more than half
OTHER_CORES_LIMIT = 0.25  # other processes busy on more than this fraction of the cores
LOAD_LIMIT = 1.5          # 1-min load average above this many times the core count (our own
                          # threads alone can bring it up to ~1x, so 1.5x means others queue)
WINDOW_S = 0.25           # how long each snapshot watches the other processes

_PROC = Path("/proc")


def _proc_cpu_ticks(proc: Path) -> dict[int, tuple[str, int]]:
    """pid -> (command name, user + system clock ticks so far) for every readable process."""
    ticks = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:     # the process ended while we looked, or is not ours to read
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split on the
        # last ')'. utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after it.
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        ticks[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return ticks


def other_processes_busy(window_s: float = WINDOW_S, proc: Path = _PROC,
                         exclude: set[int] | None = None, top: int | None = 3) -> dict | None:
    """Cores' worth of CPU used by processes other than this one over ``window_s`` seconds.

    Returns ``{"other_busy_cores": float, "busiest": [{"pid", "name", "cores"}, ...]}``
    (the ``top`` busiest; all with ``top=None``), or ``None`` where ``/proc`` is not readable.
    """
    if not (proc / "stat").exists():
        return None
    exclude = {os.getpid()} if exclude is None else exclude
    hz = os.sysconf("SC_CLK_TCK")
    t0, before = time.monotonic(), _proc_cpu_ticks(proc)
    time.sleep(window_s)
    t1, after = time.monotonic(), _proc_cpu_ticks(proc)
    elapsed = max(t1 - t0, 1e-6)
    used = []
    for pid, (name, ticks) in after.items():
        if pid in exclude or pid not in before:
            continue
        delta = ticks - before[pid][1]
        if delta > 0:
            used.append({"pid": pid, "name": name, "cores": round(delta / hz / elapsed, 3)})
    used.sort(key=lambda u: -u["cores"])
    return {"other_busy_cores": round(sum(u["cores"] for u in used), 3), "busiest": used[:top]}


def load_snapshot(window_s: float = WINDOW_S) -> dict:
    """Load average (1, 5, 15 min), core and thread counts, and other processes' CPU use."""
    import torch
    try:
        loadavg = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        loadavg = None
    snapshot = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg": loadavg,
                "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    snapshot.update(other_processes_busy(window_s) or {"other_busy_cores": None,
                                                       "busiest": []})
    return snapshot


class LoadWatch:
    """``with LoadWatch() as w: measure()`` then ``w.record == {"before": ..., "after": ...}``."""

    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        self.record: dict = {}

    def __enter__(self) -> "LoadWatch":
        self.record["before"] = load_snapshot(self.window_s)
        return self

    def __exit__(self, *exc) -> None:
        self.record["after"] = load_snapshot(self.window_s)


def busy_reasons(load: dict | None, p10: float | None, p90: float | None) -> list[str]:
    """Why a measurement should not be read as the machine's quiet speed; [] when none.

    ``load`` is a ``LoadWatch.record``; ``p10``/``p90`` are the step-time percentiles.
    """
    reasons = []
    if p10 and p90 and p90 / p10 > SPREAD_LIMIT:
        reasons.append(f"spread p90/p10 {p90 / p10:.2f} > {SPREAD_LIMIT}")
    for when, snap in (load or {}).items():
        cores = snap.get("cpu_count") or 1
        other = snap.get("other_busy_cores")
        if other is not None and other > OTHER_CORES_LIMIT * cores:
            names = ", ".join(f"{b['name']} {b['cores']:.1f}" for b in snap.get("busiest", []))
            reasons.append(f"other processes used {other:.1f} of {cores} cores {when}"
                           + (f" ({names})" if names else ""))
        avg = snap.get("loadavg")
        if avg and avg[0] > LOAD_LIMIT * cores:
            reasons.append(f"load average {avg[0]:.1f} on {cores} cores {when}")
    return reasons


def warning_line(flagged: list[tuple[str, list[str]]]) -> str | None:
    """One line for the CLI: ``flagged`` is (row label, reasons) for each busy row."""
    flagged = [(label, reasons) for label, reasons in flagged if reasons]
    if not flagged:
        return None
    first_label, first_reasons = flagged[0]
    return (f"warning: the machine was busy during {len(flagged)} measurement(s) "
            f"(e.g. {first_label}: {'; '.join(first_reasons)}); their times are marked BUSY "
            "and are slower or noisier than this machine's quiet speed")
