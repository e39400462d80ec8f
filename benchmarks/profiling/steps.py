"""What a profiling step reports: ran, failed, or skipped, and never PASS for a skip."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepStatus:
    name: str
    status: str                 # "ok", "failed" or "skipped"
    detail: str = ""            # why it failed or was skipped, or what it produced
    outputs: list[str] = field(default_factory=list)   # files written, relative to the run folder

    def line(self) -> str:
        mark = {"ok": "ran", "failed": "FAILED", "skipped": "skipped"}[self.status]
        return f"{self.name}: {mark}" + (f" ({self.detail})" if self.detail else "")
