"""The exercises in the order to take them, and where each one's Markdown lives."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent

# (id, rung): the order of the README's list. Each id has exercises/<rung>/<id>.md.
ORDER = [
    ("v1-blocks", "v1"), ("v1-flops", "v1"), ("v1-flops-why", "v1"), ("v1-kvcache", "v1"),
    ("v2-ablation", "v2"), ("v2-sdpa", "v2"),
    ("v3-rmsnorm", "v3"), ("v3-online-softmax", "v3"), ("v3-compile-spill", "v3"),
    ("v3-compile-tc", "v3"),
    ("v4-launches", "v4"), ("v4-floor", "v4"),
    ("hw-cycles", "hw"), ("hw-param", "hw"), ("hw-link", "hw"), ("hw-wave", "hw"),
]
RUNGS = dict(ORDER)


def markdown_path(exercise_id: str) -> Path:
    if exercise_id not in RUNGS:
        raise KeyError(f"no exercise {exercise_id!r}; `python -m exercises list` names them: "
                       f"{', '.join(RUNGS)}")
    return HERE / RUNGS[exercise_id] / f"{exercise_id}.md"


def title(exercise_id: str) -> str:
    """The first Markdown heading of the exercise."""
    for line in markdown_path(exercise_id).read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return exercise_id
