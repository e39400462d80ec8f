"""The shared CLI's text side: ``--corpus text``, ``--save DIR`` and ``--mode generate``.

Kept apart from ``cli.py`` (which times workloads) so that each reads on its own:

    python -m version1_baseline --preset tiny --corpus text --steps 3000 --save runs/doc-model
    python -m version2_fused --mode generate --weights runs/doc-model --prompt "Return the"

The generation loop is ``version1_baseline.generate.stream``; this file only drives it
and prints what it yields.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from version1_baseline.errors import UserError
from version1_baseline.generate import stream
from version1_baseline.text_corpus import ByteTokenizer, TextCorpus
from version1_baseline.train import autocast_context
from version1_baseline.weights import save_pretrained

from .progress import FirstStepNotice, StepProgress, interpreter_notice, uses_interpreter


def add_text_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="markov", choices=["markov", "text"],
                   help="train mode: markov (synthetic chain, the benchmark default) or text "
                        "(docstrings of the standard library, byte vocabulary of 257)")
    p.add_argument("--save", default=None, metavar="DIR",
                   help="train mode: write the trained model to DIR as a Hugging Face folder "
                        "(config.json, model.safetensors, and byte_tokenizer.json for text)")
    p.add_argument("--prompt", default=None,
                   help="generate mode: text (model trained on --corpus text) or "
                        "space-separated token ids (model without a byte tokenizer)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="generate mode (64)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="generate mode: 0 is greedy (default); > 0 samples")
    p.add_argument("--top-k", type=int, default=None,
                   help="generate mode: sample among the k most likely tokens")


def check_text_flags(args: argparse.Namespace) -> None:
    """Raise ``UserError`` naming a flag that does not fit the mode."""
    if args.mode != "train":
        for flag, value, default in (("--save", args.save, None), ("--corpus", args.corpus,
                                                                    "markov")):
            if value != default:
                raise UserError(f"{flag} applies to --mode train only, not {args.mode}")
    if args.mode == "generate":
        if not args.weights:
            raise UserError("--mode generate needs --weights DIR (a folder written "
                             "by --mode train --save DIR, or any local Llama folder)")
        if args.prompt is None:
            raise UserError("--mode generate needs --prompt TEXT")
        if args.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    elif args.prompt is not None:
        raise UserError(f"--prompt applies to --mode generate only, not {args.mode}")


def training_corpus(args: argparse.Namespace, config):
    """(config, corpus) for a train run: ``--corpus text`` sets the byte vocabulary."""
    if args.corpus != "text":
        return config, None
    corpus = TextCorpus()
    if args.weights and config.vocab_size != corpus.vocab_size:
        raise UserError(f"--corpus text needs vocab_size {corpus.vocab_size}; "
                         f"{args.weights} has {config.vocab_size}")
    print(f"corpus: {corpus.source}, {len(corpus.tokens):,} bytes", file=sys.stderr)
    return dataclasses.replace(config, vocab_size=corpus.vocab_size), corpus


def step_reporter(spec, model, mode: str, total: int):
    """``on_step(done, workload)`` for ``run_workload``: the loss and time left every
    tenth of a train run (and every 10 s); other modes only every 10 s; the interpreter
    notice after the first step when v3/v4 run in the interpreter."""
    current = {}

    def last_loss():
        losses = current["work"].losses
        return float(losses[-1]) if losses else None

    progress = StepProgress(total, f"{spec.name} {mode}", every=None if mode == "train" else 0,
                            loss=last_loss if mode == "train" else None)
    report = FirstStepNotice(spec.name, total, then=progress) if uses_interpreter(spec, model) \
        else progress

    def on_step(done, work):
        current["work"] = work
        report(done)
    return on_step


def save_trained(model, folder, corpus) -> None:
    save_pretrained(model, folder)
    if corpus is not None:
        corpus.tokenizer.save(folder)
    print(f"  saved {folder} (Hugging Face Llama folder"
          f"{', byte tokenizer' if corpus is not None else ''})")


def _encode_prompt(text: str, tokenizer: ByteTokenizer | None, vocab_size: int) -> list[int]:
    if tokenizer is not None:
        ids = tokenizer.encode(text)
    else:
        try:
            ids = [int(x) for x in text.split()]
        except ValueError:
            raise UserError("this model folder has no byte_tokenizer.json, so --prompt "
                             f"must be space-separated token ids, got {text!r}") from None
        bad = [i for i in ids if not 0 <= i < vocab_size]
        if bad:
            raise UserError(f"prompt ids {bad} outside the vocabulary 0..{vocab_size - 1}")
    if not ids:
        raise UserError("--prompt is empty; generation needs at least one token")
    return ids


def run_generate(spec, args: argparse.Namespace, model, device: torch.device,
                 dtype: torch.dtype, out=None) -> int:
    """Stream ``--max-new-tokens`` tokens after ``--prompt`` to ``out`` (stdout) as they come."""
    out = out or sys.stdout
    tokenizer = ByteTokenizer.load(args.weights)
    ids = _encode_prompt(args.prompt, tokenizer, model.config.vocab_size)
    if len(ids) + args.max_new_tokens > model.config.max_seq_len:
        raise UserError(f"prompt of {len(ids)} tokens + --max-new-tokens "
                         f"{args.max_new_tokens} exceeds the model's max_seq_len "
                         f"{model.config.max_seq_len}")
    interpreted = uses_interpreter(spec, model)
    decoder = tokenizer.decoder() if tokenizer else None
    generator = torch.Generator(device=device).manual_seed(args.seed)
    prompt = torch.tensor([ids], dtype=torch.int64, device=device)
    out.write(args.prompt)
    out.flush()
    start = last = time.perf_counter()
    n = 0
    with autocast_context(device.type, dtype):
        for token in stream(model, prompt, args.max_new_tokens, args.temperature, args.top_k,
                            generator):
            now = time.perf_counter()
            n += 1
            if interpreted and n == 2 and args.max_new_tokens > 2:
                # token 1 came from the prompt's prefill; token 2 is the first decode step
                interpreter_notice(spec.name, now - last, args.max_new_tokens - 2, "tokens")
            last = now
            value = int(token[0, 0])
            out.write(decoder.feed([value]) if decoder else f" {value}")
            out.flush()
    seconds = time.perf_counter() - start
    out.write("\n")
    print(f"{spec.name}: {n} tokens in {seconds:.2f} s ({n / seconds:.1f} tokens/s, "
          f"{'greedy' if args.temperature == 0 else f'temperature {args.temperature}'}"
          f"{f', top-k {args.top_k}' if args.top_k else ''})", file=sys.stderr)
    return 0
