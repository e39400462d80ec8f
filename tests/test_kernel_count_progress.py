"""`kernel_count --triton-calls` is no longer silent (issue 19, item 3): it says up front
that it runs in the interpreter, shows a bar per (version, stage) on stderr, and gives a
rough time left from each version's first counted call."""
import re

import pytest

import benchmarks.kernel_count as kc
from version3_triton import runtime


def test_triton_calls_says_interpreter_and_shows_progress(monkeypatch, capsys):
    built = []

    def fake_steps(name, preset, batch, seq, device, dtype, allow_interpreter):
        # Stands in for building v3/v4 in the interpreter (minutes on 2 cores): each call
        # records launches the way the kernels' wrappers do, a different count per version.
        built.append((name, preset, seq, allow_interpreter))
        n = {"v3": 3, "v4": 2}[name]
        forward = lambda: runtime.CALLS.update({f"{name}_fwd": n})   # noqa: E731
        decode = lambda: runtime.CALLS.update({f"{name}_dec": n + 1})  # noqa: E731
        return None, forward, decode

    monkeypatch.setattr(kc, "_steps", fake_steps)
    monkeypatch.setattr(kc.torch.cuda, "is_available", lambda: False)
    assert kc.main(["--triton-calls"]) == 2          # no GPU: still no device count
    out, err = capsys.readouterr()
    assert built == [("v3", "tiny", 8, True), ("v4", "tiny", 8, True)]   # CPU defaults
    assert "run in the Triton interpreter" in err
    for name in ("v3", "v4"):    # each version's own estimate (v4 is far slower there)
        assert re.search(rf"{name}: Triton kernels run in the interpreter .* the first step "
                         rf"took \d+\.\d s, so the 2 {name} decode calls left take about", err)
    assert "triton calls: 100%" in err and "10/10" in err       # the tqdm bar, on stderr
    assert "v4 decode_token counted" in err                     # the stage it is at
    assert '"forward_total": 3' in out and '"decode_token_total": 3' in out  # v4: 2+1
    assert "NOT device kernel counts" in out and "triton calls" not in out


@pytest.mark.parametrize("argv, expected", [([], ("small", 128)),
                                            (["--preset", "tiny", "--seq-len", "32"],
                                             ("tiny", 32))])
def test_gpu_defaults_are_unchanged(monkeypatch, argv, expected):
    seen = {}

    def fake_counts(versions, preset, batch, seq, device, dtype):
        seen["args"] = (preset, seq)
        raise SystemExit(0)

    monkeypatch.setattr(kc.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(kc, "device_counts", fake_counts)
    monkeypatch.setattr(kc, "resolve_dtype", lambda name, device: kc.torch.float32)
    with pytest.raises(SystemExit):
        kc.main(argv)
    assert seen["args"] == expected
