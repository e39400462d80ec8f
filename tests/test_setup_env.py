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


# scripts/yosys_setup.sh: Yosys (for hw_offload.synth) from apt where the machine allows it,
# else a printed reason; never fatal. apt-get and yosys are fakes on a PATH of their own.
def _ensure_yosys(tmp_path, apt_script=None, has_yosys=False, **env) -> tuple[str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    fake_yosys = "#!/bin/sh\necho 'Yosys 9.9 (fake)'\n"
    if has_yosys:
        (bin_dir / "yosys").write_text(fake_yosys)
        (bin_dir / "yosys").chmod(0o755)
    if apt_script is not None:
        # $1 is install/update; the script decides by $* and the call count what happens
        (bin_dir / "apt-get").write_text(
            f"#!/bin/sh\necho \"$*\" >> '{calls}'\n"
            f"YOSYS='{bin_dir}/yosys'; FAKE=\"{fake_yosys}\"\n{apt_script}\n")
        (bin_dir / "apt-get").chmod(0o755)
    script = (f"set -euo pipefail; source '{REPO_ROOT}/scripts/yosys_setup.sh'; ensure_yosys; "
              "echo RC=$?")
    out = subprocess.run(["/bin/bash", "-c", script], env={"PATH": str(bin_dir), **env},
                         capture_output=True, text=True, check=True).stdout
    return out, (calls.read_text().splitlines() if calls.exists() else [])


INSTALLS = "case \"$*\" in *install*) printf '%s' \"$FAKE\" > \"$YOSYS\"; /bin/chmod +x \"$YOSYS\";; esac"
INSTALL_FAILS_UNTIL_UPDATE = ("case \"$*\" in *update*) : > \"$YOSYS.lists\";; *install*) "
                              "[ -e \"$YOSYS.lists\" ] || exit 100; printf '%s' \"$FAKE\" > \"$YOSYS\"; "
                              "/bin/chmod +x \"$YOSYS\";; esac")


def test_yosys_present_is_left_alone(tmp_path):
    out, calls = _ensure_yosys(tmp_path, INSTALLS, has_yosys=True, SETUP_UID="0")
    assert out.strip() == "RC=0" and calls == []


def test_yosys_not_installed_without_root_and_says_why(tmp_path):
    out, calls = _ensure_yosys(tmp_path, INSTALLS, SETUP_UID="1000")
    assert calls == [] and "not root" in out and "skipped" in out and "RC=0" in out


def test_yosys_installed_by_apt_as_root(tmp_path):
    out, calls = _ensure_yosys(tmp_path, INSTALLS, SETUP_UID="0")
    assert len(calls) == 1 and "install" in calls[0] and "yosys" in calls[0]
    assert "installed Yosys 9.9 (fake)" in out and "RC=0" in out


def test_yosys_stale_package_lists_are_updated_once(tmp_path):
    out, calls = _ensure_yosys(tmp_path, INSTALL_FAILS_UNTIL_UPDATE, SETUP_UID="0")
    assert [c.split()[0] for c in calls] == ["install", "update", "install"]
    assert "installed Yosys" in out


def test_yosys_failed_apt_is_a_warning_not_a_failure(tmp_path):
    out, calls = _ensure_yosys(tmp_path, "exit 100", SETUP_UID="0")
    assert [c.split()[0] for c in calls] == ["install", "update"]
    assert "warning: apt-get install yosys failed" in out and "RC=0" in out


def test_yosys_without_apt_get_says_so(tmp_path):
    out, calls = _ensure_yosys(tmp_path, None, SETUP_UID="0")
    assert "no apt-get" in out and "RC=0" in out
