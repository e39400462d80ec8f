"""benchmarks.hw.task_accuracy: every row present, each loss recomputed independently from the
logits the model / backend returned, relative differences recomputed, Verilator == golden."""
import math

import pytest
import torch

from benchmarks.hw.task_accuracy import TASK_CONFIG, measure, relative_difference, to_markdown
from version1_baseline import MarkovCorpus, TinyLlamaConfig

# Small enough to train 3 steps and run one 5-token sequence through the simulator in seconds.
SMALL = TinyLlamaConfig(vocab_size=32, hidden_size=16, num_layers=1, num_heads=1, num_kv_heads=1,
                        intermediate_size=32, max_seq_len=8)
ROWS = {(m, s) for s in ("held-out", "rtl") for m in ("float", "golden-per-channel", "golden-per-matrix")}
ROWS |= {("verilator-per-channel", "rtl"), ("verilator-per-matrix", "rtl")}


@pytest.fixture(scope="module")
def result():
    return measure(SMALL, steps=3, batch=4, n_heldout=3, n_rtl=1, rtl_len=5, n_calib=2)


def nll(logits: torch.Tensor, ids: torch.Tensor) -> float:
    """Mean next-token negative log-likelihood in float64, written out (no causal_lm_loss)."""
    logp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return float(-logp.gather(-1, ids[:, 1:, None]).mean())


@pytest.mark.rtl
def test_every_row_and_losses_recomputed_from_the_returned_logits(result):
    assert {(r["model"], r["sequences"]) for r in result.rows} == ROWS
    assert len(result.rows) == len(ROWS)
    for r in result.rows:
        ids = result.ids[r["sequences"]]
        logits = result.logits[f"{r['model']}/{r['sequences']}"]
        assert logits.shape == (*ids.shape, SMALL.vocab_size)
        assert r["loss"] == pytest.approx(nll(logits, ids), rel=1e-5, abs=1e-6)
        float_loss = nll(result.logits[f"float/{r['sequences']}"], ids)
        assert r["rel_diff_vs_float"] == pytest.approx((nll(logits, ids) - float_loss) / float_loss,
                                                       rel=1e-4, abs=1e-6)
        floor = MarkovCorpus(SMALL.vocab_size, seed=0).loss_floor(ids.shape[1])
        assert r["floor"] == pytest.approx(floor) and r["above_floor"] == pytest.approx(r["loss"] / floor - 1)
    # The integer rows really ran on the accelerator (a host fallback would return float logits).
    for name in ("golden-per-channel/held-out", "golden-per-matrix/held-out", "verilator-per-channel/rtl"):
        split = name.split("/")[1]
        assert not torch.equal(result.logits[name], result.logits[f"float/{split}"])
    # The per_channel option reaches the quantizer: the two weight schemes give other logits.
    assert not torch.equal(result.logits["golden-per-channel/held-out"],
                           result.logits["golden-per-matrix/held-out"])
    assert result.training["verilator == golden logits (per-channel)"] is True
    assert result.training["verilator == golden logits (per-matrix)"] is True


@pytest.mark.rtl
def test_markdown_has_every_row_and_the_verdict(result):
    md = to_markdown(result, {"cpu": "test-cpu", "cpu_count": 2, "torch": "x", "git_sha": "abc"})
    for model, seqs in ROWS:
        assert f"| {model} | {seqs} |" in md
    worst = max(abs(r["rel_diff_vs_float"]) for r in result.rows if r["model"] != "float")
    assert ("NOT MET" in md) == (worst > 0.02)


def test_relative_difference_sign_and_scale():
    assert relative_difference(1.02, 1.0) == pytest.approx(0.02)
    assert relative_difference(0.9, 1.0) == pytest.approx(-0.1)
    assert math.isclose(relative_difference(3.0, 3.0), 0.0)


def test_task_config_fits_the_array():
    # hidden and intermediate multiples of N = 16, head_dim one array tile (hw_offload limits)
    assert TASK_CONFIG.hidden_size % 16 == 0 and TASK_CONFIG.intermediate_size % 16 == 0
    assert TASK_CONFIG.head_dim == 16
