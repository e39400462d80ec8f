"""scripts/torch_choice.sh: which torch build the set-up installs on which machine.

The GPU probes are pointed at fake folders (TORCH_PROBE_PATH for nvidia-smi / rocminfo,
TORCH_PROBE_DEV for /dev/nvidia* and /dev/kfd), so every machine kind is tested here.
"""
from __future__ import annotations

import subprocess

import pytest

from benchmarks.environment import REPO_ROOT

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _choose(tmp_path, tools=(), devices=(), **env) -> tuple[list[str], str]:
    tmp_path.mkdir(exist_ok=True)
    bin_dir, dev_dir = tmp_path / "bin", tmp_path / "dev"
    bin_dir.mkdir()
    dev_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    for device in devices:
        (dev_dir / device).write_text("")
    script = (f"set -euo pipefail; source '{REPO_ROOT}/scripts/torch_choice.sh'; choose_torch; "
              'printf "%s\\n" "${TORCH_PIP_ARGS[@]}"; echo "CHOICE=$TORCH_CHOICE"')
    base = {"PATH": "/usr/bin:/bin", "TORCH_PROBE_PATH": str(bin_dir),
            "TORCH_PROBE_DEV": str(dev_dir)}
    out = subprocess.run(["bash", "-c", script], env={**base, **env}, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return out[:-1], out[-1].removeprefix("CHOICE=")


def test_no_gpu_installs_the_cpu_build_and_says_why(tmp_path):
    args, why = _choose(tmp_path)
    assert args == ["torch", "--index-url", CPU_INDEX]
    assert "CPU build" in why and "no NVIDIA or AMD GPU" in why


@pytest.mark.parametrize("tools,devices,kind", [
    (["nvidia-smi"], [], "nvidia"), ([], ["nvidia0"], "nvidia"),
    (["rocminfo"], [], "amd"), ([], ["kfd"], "amd")])
def test_a_gpu_gets_the_default_build(tmp_path, tools, devices, kind):
    args, why = _choose(tmp_path, tools, devices)
    assert args == ["torch"] and f"found an {kind} GPU" in why


def test_torch_spec_keeps_plain_pypi_as_ci_needs(tmp_path):
    args, why = _choose(tmp_path, TORCH_SPEC="torch==2.13.0")
    assert args == ["torch==2.13.0"] and "TORCH_SPEC is set" in why


def test_index_url_overrides_and_empty_means_pypi(tmp_path):
    args, why = _choose(tmp_path, tools=["nvidia-smi"], TORCH_INDEX_URL="https://example/whl")
    assert args == ["torch", "--index-url", "https://example/whl"]
    assert "TORCH_INDEX_URL is set" in why
    args, why = _choose(tmp_path / "2", TORCH_INDEX_URL="")
    assert args == ["torch"] and "PyPI" in why
    args, _ = _choose(tmp_path / "3", TORCH_SPEC="torch==2.13.0", TORCH_INDEX_URL=CPU_INDEX)
    assert args == ["torch==2.13.0", "--index-url", CPU_INDEX]
