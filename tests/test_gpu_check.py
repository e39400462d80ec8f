"""``scripts/gpu_check.sh`` without a GPU: one line saying why, exit status 2, nothing run."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_without_a_gpu_exits_2_with_one_line(tmp_path):
    before = set((ROOT / "results").glob("gpu-*")) if (ROOT / "results").exists() else set()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "gpu_check: no CUDA/ROCm GPU visible (torch.cuda.is_available() is False)"]
    after = set((ROOT / "results").glob("gpu-*")) if (ROOT / "results").exists() else set()
    assert after == before  # no results folder for a run that did not happen
