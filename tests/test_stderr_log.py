"""run_all_profilers.sh output stays readable (issue 16): third-party stderr chatter goes to a
log file in the results folder, real errors and exit codes still reach the user."""
import subprocess
import sys
import textwrap

import pytest

from benchmarks.stderr_log import NoiseFilter

NOISY_CHILD = textwrap.dedent("""
    import sys, warnings
    print("project table line", flush=True)
    err = sys.stderr
    err.write("USDT:2026-11-29 13:58:26 1:1 SyncActivityProfilerHandler.cpp:52] profiler_start\\n")
    err.write("[W1129 13:58:27.361687372 CPUAllocator.cpp:245] Memory block of unknown size\\n")
    err.write("W1129 13:58:52.107000 21395 torch/_logging/_internal.py:1345] graph break\\n")
    err.write("E0000 00:00:00 cuda_probe.cc:1] gpuGetDeviceCount failed: no device\\n")
    warnings.warn("`export_memory_timeline` is deprecated", FutureWarning)
    warnings.warn("Dynamo does not know how\\nIf it is a Python builtin, file an issue\\n"
                  "If it is a third-party extension, wrap it", UserWarning)
    err.write("progress 50%\\r")
    err.write("project message on stderr\\n")
    err.flush()
    if len(sys.argv) > 1:
        raise RuntimeError("step exploded: " + sys.argv[1])
""")


def run_wrapped(tmp_path, *child_args):
    script = tmp_path / "child.py"
    script.write_text(NOISY_CHILD)
    log = tmp_path / "results" / "third_party.log"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.stderr_log", str(log), "--",
                           sys.executable, str(script), *child_args],
                          capture_output=True, text=True, timeout=120)
    return proc, log.read_text()


def test_noise_goes_to_the_log_and_project_output_stays(tmp_path):
    proc, log = run_wrapped(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "project table line\n"
    for noise in ("profiler_start", "CPUAllocator", "graph break", "gpuGetDeviceCount",
                  "FutureWarning", "export_memory_timeline", "If it is a Python builtin",
                  "third-party extension"):
        assert noise in log, noise
        assert noise not in proc.stderr, noise
    assert "progress 50%" in proc.stderr and "project message on stderr" in proc.stderr
    assert "project message on stderr" in log        # the log is the complete stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("[stderr_log]")]
    assert len(lines) == 1 and "third_party.log" in lines[0]   # one line says where


def test_a_failing_step_still_fails_and_shows_its_traceback(tmp_path):
    proc, log = run_wrapped(tmp_path, "boom")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "RuntimeError: step exploded: boom" in proc.stderr
    assert "exited with status 1" in proc.stderr and "RuntimeError" in log
    assert "profiler_start" not in proc.stderr


def test_a_marker_printed_on_a_progress_bar_line_is_routed_and_the_bar_kept():
    f = NoiseFilter()
    shown = f.feed(b"\rbenchmarks:  39%|###| 7/18 [00:46]USDT:2026-11-29 15:39:44 26043:26043 "
                   b"SyncActivityProfilerHandler.cpp:52] profiler_start\n"
                   b"\rbenchmarks:  44%|####| 8/18\n")
    assert b"USDT" not in shown and f.routed_lines == 1
    assert b"7/18 [00:46]" in shown and b"8/18" in shown


def test_filter_never_swallows_an_error_after_a_warning():
    f = NoiseFilter()
    shown = f.feed(b"/x.py:3: UserWarning: careful\nTraceback (most recent call last):\n"
                   b"ValueError: bad input\n")
    assert shown == b"Traceback (most recent call last):\nValueError: bad input\n"
    assert f.feed(b"partial line without end") == b"" and f.flush() == b"partial line without end"


@pytest.mark.slow
def test_real_profiling_step_output_is_quiet(tmp_path):
    log = tmp_path / "third_party.log"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.stderr_log", str(log), "--",
                           sys.executable, "-m", "benchmarks.profiling", "--versions", "v1",
                           "--preset", "chip16", "--steps", "1", "--warmup", "0", "--device",
                           "cpu", "--no-vendor", "--out", str(tmp_path / "profile")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "profiler_start" in text and "profiler_stop" in text
    assert "USDT" not in proc.stdout, proc.stdout
    assert "USDT" not in proc.stderr and "Warning:" not in proc.stderr, proc.stderr
    assert "# Profiling summary" in proc.stdout
