"""Task-level accuracy of the integer model: held-out loss of a trained v1 model, float vs
the accelerator (golden target and Verilator RTL), int8 weights per output channel vs per matrix.

    python -m benchmarks.hw.task_accuracy [--steps 600] [--heldout 64] [--rtl-seqs 2] [--out DIR]

Trains version 1 (seeded, deterministic) on the synthetic Markov corpus
(``version1_baseline/data.py``) until its held-out loss is near the corpus's entropy floor,
then runs the same held-out sequences (a generator seed that training never uses) through
``torch.compile(model, backend="rtl", options={"target": ..., "per_channel": ...})``.
Calibration is the backend's own: its first call (a prefill from position 0) is a separate
set of corpus sequences, so the held-out sequences never set a scale. The Verilator rows use
a few short sequences only (the simulator is slow); the float and golden rows on those same
sequences are reported next to them, like for like. Every number is measured; nothing is
timed. The goal (issue 18): integer-model loss within 2 % of the float model's.

The default config is ``TASK_CONFIG`` (vocab 64, hidden 64, 2 layers), not the ``tiny`` preset:
on the 2-core CPU machine a tiny training step (batch 8 x 128 tokens) took about 8.6 s, so
tiny cannot get near its floor in minutes; this config gets within a few percent of the
floor in a few hundred steps and has the same block structure (GQA, head_dim 16 = one array
tile).
"""
from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

import hw_offload.backend  # noqa: F401  (registers the "rtl" torch.compile backend)
from benchmarks.environment import default_out, machine_info
from version1_baseline import MarkovCorpus, TinyLlama, TinyLlamaConfig
from version1_baseline.train import Trainer, causal_lm_loss

TASK_CONFIG = TinyLlamaConfig(vocab_size=64, hidden_size=64, num_layers=2, num_heads=4,
                              num_kv_heads=2, intermediate_size=128, max_seq_len=32)
GOAL = 0.02                      # |integer loss / float loss - 1| the issue asks for
# Seeds: distinct streams so that training, calibration and evaluation never share a sequence.
CORPUS_SEED, TRAIN_SEED, CALIB_SEED, HELDOUT_SEED, RTL_SEED, INIT_SEED = 0, 1, 1001, 2002, 3003, 0


@dataclass
class TaskAccuracy:
    """What ``measure`` returns. ``rows``: one dict per (model, sequence set); ``logits``:
    {row name: (B, S, vocab) fp32 logits} as the model / backend returned them (not in JSON);
    ``ids``: {sequence set: (B, S) int64 token ids}."""

    config: dict
    training: dict
    floors: dict
    rows: list[dict]
    logits: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    ids: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {"config": self.config, "training": self.training, "floors": self.floors,
                "goal_rel_diff": GOAL, "rows": self.rows}


def relative_difference(loss: float, float_loss: float) -> float:
    """(loss - float_loss) / float_loss: positive when the integer model is worse."""
    return (loss - float_loss) / float_loss


def train_model(cfg: TinyLlamaConfig, corpus: MarkovCorpus, steps: int, batch: int,
                lr: float) -> tuple[TinyLlama, dict]:
    """Seeded AdamW training on fresh corpus batches: ``lr`` for the first 2/3 of the steps,
    lr/5 after (the drop takes the last few hundredths of a nat off the held-out loss)."""
    torch.manual_seed(INIT_SEED)
    model = TinyLlama(cfg)
    trainer = Trainer(model, lr=lr)
    batches = corpus.batches(batch, cfg.max_seq_len, seed=TRAIN_SEED)
    losses = []
    for i in range(steps):
        if i == (2 * steps) // 3:
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr / 5
        losses.append(float(trainer.step(next(batches))))
    model.eval()
    tail = losses[-min(20, len(losses)):]
    return model, {"steps": steps, "batch": batch, "seq_len": cfg.max_seq_len, "lr": lr,
                   "lr_after_2/3": lr / 5, "first_loss": losses[0],
                   "last20_train_loss": sum(tail) / len(tail), "init_seed": INIT_SEED,
                   "train_seed": TRAIN_SEED}


def integer_logits(model: TinyLlama, ids: torch.Tensor, calib: torch.Tensor, target: str,
                   per_channel: bool) -> torch.Tensor:
    """(B, S, vocab) logits of ``model`` through the rtl backend on ``target``.

    A fresh deep copy per call: the backend keys its device state by the weight tensors, so
    each (target, per_channel) gets its own calibration and session. The first call on
    ``calib`` (B', S) is the backend's calibration pass."""
    twin = copy.deepcopy(model).eval()
    torch._dynamo.reset()
    compiled = torch.compile(twin, backend="rtl", dynamic=False,
                             options={"target": target, "per_channel": per_channel,
                                      "progress": False})
    with torch.no_grad():
        compiled(calib)
        out = compiled(ids).float()
    torch._dynamo.reset()
    return out


def loss_of(logits: torch.Tensor, ids: torch.Tensor) -> float:
    return float(causal_lm_loss(logits, ids))


def measure(cfg: TinyLlamaConfig = TASK_CONFIG, steps: int = 600, batch: int = 32,
            lr: float = 1e-2, n_heldout: int = 64, n_rtl: int = 2, rtl_len: int = 16,
            n_calib: int = 8, rtl: bool = True) -> TaskAccuracy:
    """Train, then measure every row. ``n_rtl`` sequences of ``rtl_len`` tokens go through
    the Verilator target (``rtl=False`` leaves those two rows out, for machines without it)."""
    corpus = MarkovCorpus(cfg.vocab_size, seed=CORPUS_SEED)
    sets = {"held-out": corpus.sample(n_heldout, cfg.max_seq_len,
                                      generator=torch.Generator().manual_seed(HELDOUT_SEED)),
            "rtl": corpus.sample(n_rtl, rtl_len, generator=torch.Generator().manual_seed(RTL_SEED))}
    calib = corpus.sample(n_calib, cfg.max_seq_len, generator=torch.Generator().manual_seed(CALIB_SEED))
    model, training = train_model(cfg, corpus, steps, batch, lr)
    floors = {"loss_floor(seq_len)": corpus.loss_floor(cfg.max_seq_len),
              "loss_floor(rtl_len)": corpus.loss_floor(rtl_len),
              "entropy_rate": corpus.entropy_rate(), "uniform": corpus.uniform_loss()}

    result = TaskAccuracy(config=cfg.to_dict(), training=training, floors=floors, rows=[],
                          ids=sets)
    targets = [("golden", t) for t in ("held-out", "rtl")] + ([("verilator", "rtl")] if rtl else [])
    for name, ids in sets.items():
        with torch.no_grad():
            result.logits[f"float/{name}"] = model(ids).float()
    for target, name in targets:
        for per_channel in (True, False):
            key = f"{target}-{'per-channel' if per_channel else 'per-matrix'}/{name}"
            result.logits[key] = integer_logits(model, sets[name], calib, target, per_channel)
    for key, logits in result.logits.items():
        model_name, name = key.split("/")
        ids = sets[name]
        float_loss = loss_of(result.logits[f"float/{name}"], ids)
        loss = loss_of(logits, ids)
        floor = corpus.loss_floor(ids.shape[1])
        result.rows.append({"model": model_name, "sequences": name, "n_seq": ids.shape[0],
                            "seq_len": ids.shape[1], "loss": loss, "floor": floor,
                            "above_floor": loss / floor - 1,
                            "rel_diff_vs_float": relative_difference(loss, float_loss)})
    if rtl:   # the backend promises bit-identical golden and Verilator results
        for w in ("per-channel", "per-matrix"):
            same = torch.equal(result.logits[f"golden-{w}/rtl"], result.logits[f"verilator-{w}/rtl"])
            result.training[f"verilator == golden logits ({w})"] = same
    return result


def to_markdown(res: TaskAccuracy, machine: dict) -> str:
    cfg, tr, fl = res.config, res.training, res.floors
    lines = ["# hw_offload: task-level accuracy of the integer model (held-out loss)", "",
             f"Machine: cpu-2core ({machine['cpu']}, {machine['cpu_count']} CPUs), torch "
             f"{machine['torch']}, git {machine['git_sha']}. MEASURED; nothing here is timed.", "",
             f"Model: version 1, vocab {cfg['vocab_size']}, hidden {cfg['hidden_size']}, "
             f"{cfg['num_layers']} layers, {cfg['num_heads']} heads / {cfg['num_kv_heads']} KV heads, "
             f"intermediate {cfg['intermediate_size']}, seq {cfg['max_seq_len']} (not `tiny`: see "
             "the module docstring). Trained on the synthetic Markov corpus (seeded, deterministic): "
             f"{tr['steps']} AdamW steps of {tr['batch']} x {tr['seq_len']} tokens, lr {tr['lr']:g} "
             f"then {tr['lr_after_2/3']:g}; train loss {tr['first_loss']:.4f} -> "
             f"{tr['last20_train_loss']:.4f} (mean of the last 20 steps).", "",
             f"Corpus floors (nats): loss_floor({cfg['max_seq_len']}) = {fl['loss_floor(seq_len)']:.4f}, "
             f"entropy rate {fl['entropy_rate']:.4f}, uniform ln(vocab) {fl['uniform']:.4f}.", "",
             "Integer rows: `torch.compile(model, backend=\"rtl\", options={\"target\": ..., "
             "\"per_channel\": ...})`, calibrated on its first call (separate corpus sequences); "
             "blocks run on the accelerator, embeddings / final norm / LM head on the host in float.", "",
             "| model | sequences | n x len | loss | floor | above floor | vs float |",
             "|---|---|---|---|---|---|---|"]
    for r in res.rows:
        lines.append(f"| {r['model']} | {r['sequences']} | {r['n_seq']} x {r['seq_len']} | "
                     f"{r['loss']:.4f} | {r['floor']:.4f} | {100 * r['above_floor']:+.2f} % | "
                     f"{100 * r['rel_diff_vs_float']:+.3f} % |")
    worst = max(abs(r["rel_diff_vs_float"]) for r in res.rows if r["model"] != "float")
    lines += ["", f"Goal: integer loss within {100 * GOAL:g} % of float. Largest |difference| over "
              f"the integer rows: {100 * worst:.3f} % -> {'MET' if worst <= GOAL else 'NOT MET'}."]
    for k, v in tr.items():
        if k.startswith("verilator =="):
            lines.append(f"{k}: {v}.")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--heldout", type=int, default=64, help="held-out sequences (golden rows)")
    ap.add_argument("--rtl-seqs", type=int, default=2, help="sequences through the Verilator RTL")
    ap.add_argument("--rtl-len", type=int, default=16, help="their length in tokens")
    ap.add_argument("--no-rtl", action="store_true", help="leave out the Verilator rows")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: results/<date-time>/hw; to refresh the committed result pass "
                         "--out benchmarks/results/cpu-2core/hw")
    args = ap.parse_args(argv)
    for name in ("steps", "heldout", "rtl_seqs"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 2 <= args.rtl_len <= TASK_CONFIG.max_seq_len:
        raise SystemExit(f"error: --rtl-len must be in [2, {TASK_CONFIG.max_seq_len}], got {args.rtl_len}")
    out = args.out or default_out("hw")
    res = measure(steps=args.steps, n_heldout=args.heldout, n_rtl=args.rtl_seqs,
                  rtl_len=args.rtl_len, rtl=not args.no_rtl)
    machine = machine_info(torch.device("cpu"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "task_accuracy.json").write_text(json.dumps({"machine": machine, **res.to_json()},
                                                       indent=2))
    md = to_markdown(res, machine)
    (out / "task_accuracy.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
