"""The shared CLI writes a valid result JSON, and the schema rejects malformed records."""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.schema import load, validate


@pytest.mark.parametrize("mode", ["train", "prefill", "decode"])
def test_v1_cli_writes_valid_json(mode, tmp_path):
    out = tmp_path / f"{mode}.json"
    cmd = [sys.executable, "-m", "version1_baseline", "--preset", "chip16", "--mode", mode,
           "--steps", "3", "--warmup", "1", "--device", "cpu", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = load(out)
    assert record["version"] == "v1" and record["mode"] == mode
    assert record["step_time_ms"]["n"] == 3
    assert record["ops_per_step"] > 0 and record["peak_memory_bytes"] > 0
    assert record["kernel_launches_per_step"] is None   # CPU: nothing to count, not a zero
    if mode == "train":
        assert record["first_loss"] > 0 and record["last_loss"] > 0
    # the machine's load around the timed steps, when, and the one warning line iff flagged
    assert set(record["load"]) == {"before", "after"} and record["timestamp"]
    assert record["load"]["before"]["cpu_count"] == os.cpu_count()
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: the machine")]
    assert len(warned) == (1 if record["busy"] else 0)


def test_cli_rejects_bad_arguments():
    proc = subprocess.run([sys.executable, "-m", "version1_baseline", "--preset", "chip16",
                           "--steps", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--steps must be positive" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "version1_baseline", "--preset", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


def test_schema_rejects_malformed_records(tmp_path):
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "version1_baseline", "--preset", "chip16", "--mode",
                    "prefill", "--steps", "2", "--warmup", "0", "--no-count", "--json", str(out)],
                   check=True, capture_output=True, timeout=300)
    good = json.loads(out.read_text())
    validate(good)
    for key, value, match in [("mode", "sing", "mode"), ("tokens_per_s", 0, "positive"),
                              ("step_time_ms", {"median": 1}, "missing"),
                              ("ops_per_step", -1, "non-negative")]:
        with pytest.raises(ValueError, match=match):
            validate(dict(good, **{key: value}))
    bad = dict(good)
    del bad["machine"]
    with pytest.raises(ValueError, match="machine"):
        validate(bad)
