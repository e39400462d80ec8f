"""Progress lines: training prints its loss and the time left; the interpreter says so.

(The harness's one bar over every (preset, mode, version) is checked in test_bench.py,
on the run that already exercises every kind of row.)
"""
from __future__ import annotations

import io
import re


from benchmarks.cli import main as cli_main
from benchmarks.progress import FirstStepNotice, StepProgress, format_seconds, uses_interpreter
from version1_baseline import SPEC as V1
from version1_baseline import TinyLlamaConfig, TinyLlama


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_step_progress_every_tenth_and_every_interval():
    clock, out = _Clock(), io.StringIO()
    losses = iter(range(100))
    progress = StepProgress(50, "v9 train", loss=lambda: float(next(losses)), interval_s=10,
                            out=out, clock=clock)
    for done in range(1, 51):
        clock.now += 0.5 if done != 7 else 12.0     # step 7 is slow: a line by time
        progress(done)
    lines = out.getvalue().splitlines()
    steps = [int(re.match(r"v9 train step (\d+)/50 loss", line).group(1)) for line in lines]
    assert steps == [5, 7, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    # step 10: 9 * 0.5 + 12 = 16.5 s for 10 steps, 40 left at 1.65 s each
    assert lines[2].endswith("elapsed 16 s, about 1 min 06 s left")
    assert lines[-1].endswith("about 0 s left")


def test_step_progress_time_only_mode_is_silent_on_short_runs():
    clock, out = _Clock(), io.StringIO()
    progress = StepProgress(20, "v1 decode", every=0, out=out, clock=clock)
    for done in range(1, 21):
        clock.now += 0.1
        progress(done)
    assert out.getvalue() == ""


def test_interpreter_notice_extrapolates_the_first_step(capsys):
    clock = _Clock()
    then = []
    notice = FirstStepNotice("v3", 13, then=then.append, clock=clock)
    clock.now += 4.5
    notice(1)
    clock.now += 4.5
    notice(2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and then == [1, 2]
    assert "v3: Triton kernels run in the interpreter (TRITON_INTERPRET=1" in err[0]
    assert err[0].endswith("the first step took 4.5 s, so the 12 steps left take about 54 s")


def test_format_seconds():
    assert [format_seconds(s) for s in (3.2, 75, 3600 * 2 + 125)] == ["3 s", "1 min 15 s",
                                                                      "2 h 02 min"]


def test_only_triton_versions_in_the_interpreter_are_flagged():
    cfg = TinyLlamaConfig(vocab_size=64, hidden_size=32, num_layers=1,
                          num_heads=2, num_kv_heads=1, intermediate_size=64,
                          max_seq_len=16, batch_size=1)
    assert not uses_interpreter(V1, TinyLlama(cfg))
    from version3_triton import SPEC as V3
    from version3_triton.runtime import INTERPRET
    assert uses_interpreter(V3, V3.model_cls(cfg)) == INTERPRET


def test_cli_train_prints_loss_and_time_left(capsys):
    assert cli_main(V1, ["--preset", "chip16", "--steps", "17", "--warmup", "3", "--no-count"]) == 0
    err = capsys.readouterr().err
    lines = re.findall(r"^v1 train step (\d+)/20 loss (\d+\.\d+)  elapsed .*, about .* left$",
                       err, flags=re.M)
    # every 2 steps (20 // 10), plus any 10-second line on a slow machine
    assert {2, 4, 6, 8, 10, 12, 14, 16, 18, 20} <= {int(s) for s, _ in lines}
    assert all(0 < float(loss) < 10 for _, loss in lines)
