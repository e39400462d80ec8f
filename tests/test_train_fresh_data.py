"""A falling loss must mean learning (issue 16): train mode draws a fresh, seeded batch every
step instead of cycling a few, and the corpus's entropy floor is computed from its chain
(stationary distribution, start-up included) and printed beside the loss."""
import math

import pytest
import torch

from benchmarks.runner import run_workload
from benchmarks.workloads import make_workload
from version1_baseline import MarkovCorpus, TinyLlama, TinyLlamaConfig

CPU = torch.device("cpu")
CFG = TinyLlamaConfig(vocab_size=29, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                      intermediate_size=24, max_seq_len=12, batch_size=2)


def _brute_force_chain(corpus):
    """Transition matrix and stationary distribution the slow, obvious way: a dense matrix
    filled entry by entry, pi from the eigenvector of P^T for eigenvalue 1."""
    v = corpus.vocab_size
    p = torch.zeros(v, v, dtype=torch.float64)
    for i in range(v):
        for slot in range(corpus.branching):
            p[i, corpus.successors[i, slot]] += float(corpus.probs[i, slot])
    p /= p.sum(1, keepdim=True)
    values, vectors = torch.linalg.eig(p.T)
    one = torch.argmin((values - 1).abs())
    pi = vectors[:, one].real
    return p, pi / pi.sum()


def test_entropy_rate_uses_the_stationary_distribution():
    corpus = MarkovCorpus(40, seed=3, branching=3)
    p, pi = _brute_force_chain(corpus)
    torch.testing.assert_close(corpus.transition_matrix(), p)
    torch.testing.assert_close(corpus.stationary_distribution(), pi, atol=1e-9, rtol=0)
    h = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(1)
    assert corpus.entropy_rate() == pytest.approx(float(pi @ h), abs=1e-9)
    # not the uniformly weighted mean it used to be
    assert abs(corpus.entropy_rate() - float(h.mean())) > 1e-4


def test_loss_floor_is_the_expected_loss_of_the_true_chain():
    """Monte Carlo: the true chain's own -log p on sampled batches averages to the floor."""
    corpus = MarkovCorpus(50, seed=1, branching=4)
    seq = 6
    ids = corpus.sample(20000, seq, generator=torch.Generator().manual_seed(2))
    logp = corpus.transition_matrix().log()
    nll = -logp[ids[:, :-1], ids[:, 1:]]
    stderr = float(nll.std()) / math.sqrt(nll.numel())
    assert float(nll.mean()) == pytest.approx(corpus.loss_floor(seq), abs=4 * stderr)
    assert corpus.loss_floor(seq) != pytest.approx(corpus.entropy_rate(), abs=1e-6)


def test_train_steps_see_fresh_deterministic_batches():
    seen = []

    def recording_loss(model, ids):
        seen.append(ids.clone())
        return model(ids).float().mean() * 0   # no learning needed to watch the data

    def batches(train_batches):
        seen.clear()
        torch.manual_seed(0)
        work = make_workload(TinyLlama(CFG), "train", 2, 10, CPU, torch.float32, seed=4,
                             loss_fn=recording_loss, train_batches=train_batches)
        for _ in range(9):
            work.step()
        return list(seen)

    drawn_up_front, drawn_in_step = batches(5), batches(0)
    assert len({tuple(b.flatten().tolist()) for b in drawn_up_front}) == 9   # never cycled
    for a, b in zip(drawn_up_front, drawn_in_step):   # one seeded stream either way
        assert torch.equal(a, b)


def test_run_result_and_cli_report_the_floor(capsys):
    from version1_baseline import SPEC
    from benchmarks.cli import main as cli_main
    torch.manual_seed(0)
    result = run_workload(TinyLlama(CFG), version="v1", preset="custom", mode="train",
                          batch_size=2, seq_len=10, device=CPU, dtype=torch.float32, steps=2,
                          warmup=1, count=False)
    assert result.loss_floor == pytest.approx(MarkovCorpus(29, seed=0).loss_floor(10))
    assert cli_main(SPEC, ["--preset", "chip16", "--mode", "train", "--steps", "2", "--warmup", "1",
                    "--device", "cpu", "--no-count"]) == 0
    floor = MarkovCorpus(64, seed=0).loss_floor(16)
    assert f"corpus entropy floor {floor:.4f}" in capsys.readouterr().out
