"""The hw_offload README's worked example is the tool's output of the committed run."""
from __future__ import annotations

import pytest
from doc_blocks import code_blocks

from benchmarks.environment import REPO_ROOT
from benchmarks.hw.bench_offload import README, WALK_BEGIN, WALK_END, sync_readme, walkthrough_section

COMMITTED = REPO_ROOT / "benchmarks" / "results" / "cpu-2core" / "hw" / "offload_bench.md"


def test_readme_walkthrough_equals_the_committed_run():
    text = README.read_text()
    readme_part = text.split(WALK_BEGIN, 1)[1].split(WALK_END, 1)[0].strip()
    assert readme_part == walkthrough_section(COMMITTED.read_text()), (
        "hw_offload/README.md's worked example differs from the committed offload_bench.md: "
        "rerun `python -m benchmarks.hw.bench_offload --out benchmarks/results/cpu-2core/hw "
        "--update-readme`")


def test_sync_replaces_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{WALK_BEGIN}\nold numbers\n{WALK_END}\noutro\n")
    run = "# t\n\n## Walk-through\n\n1. Bytes: 42\n\n## Later\nx\n"
    assert sync_readme(run, readme)
    assert readme.read_text() == f"intro\n{WALK_BEGIN}\n1. Bytes: 42\n{WALK_END}\noutro\n"
    assert not sync_readme(run, readme)          # idempotent
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="walk-through markers"):
        sync_readme(run, readme)


def test_use_from_python_snippet_runs_as_written():
    """The README's "Use from Python" block, extracted and executed unchanged."""
    code = next((b.code for b in code_blocks(README)
                 if "quantize_block(" in b.code and "session.run_block(" in b.code), "")
    assert code, "snippet not found"
    scope: dict = {}
    exec(compile(code, "hw_offload/README.md (Use from Python)", "exec"), scope)
    cfg = scope["cfg"]
    assert scope["y"].shape == (cfg.max_seq_len, cfg.hidden_size)
    # the int8 block is a close copy of the float one: compare against v1 itself
    import numpy as np
    import torch
    with torch.no_grad():
        ref = scope["layer"](torch.from_numpy(scope["x"])[None], scope["cos"],
                             scope["sin"])[0].numpy()
    cos_sim = float((ref * scope["y"]).sum() / np.linalg.norm(ref) / np.linalg.norm(scope["y"]))
    assert cos_sim > 0.98, cos_sim
