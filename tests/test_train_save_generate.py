"""Train -> save -> load -> generate through the shared CLI, against transformers and v1.

- ``--mode train --save DIR`` writes a folder that ``transformers`` loads with the same
  logits as version 1 reading the same folder;
- ``--mode generate`` streams one write per token, before the next token is computed,
  and (greedy) writes exactly what ``version1_baseline.generate`` returns, for v1 and v2;
- the byte tokenizer round-trips text, a character split across tokens included.
"""
from __future__ import annotations

import argparse
import json
import random

import pytest
import torch

from benchmarks.cli import main as cli_main
from benchmarks.cli_text import run_generate
from version1_baseline import SPEC as V1
from version1_baseline import TinyLlama, generate
from version1_baseline.text_corpus import ByteTokenizer, StreamDecoder, TextCorpus
from version1_baseline.weights import load_pretrained
from version2_fused import SPEC as V2

TRAIN = ["--preset", "chip16", "--steps", "3", "--warmup", "0", "--no-count", "--seed", "5"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text_model")
    assert cli_main(V1, TRAIN + ["--corpus", "text", "--save", str(folder)]) == 0
    return folder


def test_saved_folder_loads_in_transformers_with_v1_logits(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "markov_model"
    assert cli_main(V1, TRAIN + ["--save", str(folder)]) == 0
    assert "saved" in capsys.readouterr().out
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    hf = transformers.LlamaForCausalLM.from_pretrained(folder).eval()
    ours = load_pretrained(TinyLlama, folder).eval()
    untrained = TinyLlama(ours.config)
    ids = torch.randint(ours.config.vocab_size, (2, 13), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref, got = hf(ids).logits, ours(ids)
        # the saved weights are the trained ones, not a fresh init
        assert not torch.allclose(untrained(ids), got, atol=1e-3)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_text_corpus_model_has_byte_vocab_and_tokenizer(text_model):
    config = json.loads((text_model / "config.json").read_text())
    assert config["vocab_size"] == ByteTokenizer.vocab_size == 257
    assert ByteTokenizer.load(text_model) is not None


class _Recorder:
    """A stdout that notes how many model calls had run when each chunk was written."""

    def __init__(self, calls):
        self.calls, self.chunks = calls, []

    def write(self, text):
        self.chunks.append((len(self.calls), text))

    def flush(self):
        pass


@pytest.mark.parametrize("spec", [V1, V2], ids=["v1", "v2"])
def test_generate_streams_v1_greedy_tokens(spec, text_model):
    from benchmarks.versions import build_model
    from version1_baseline.weights import read_config, read_state_dict

    n, prompt = 9, "Re"
    model = build_model(spec, read_config(text_model), read_state_dict(text_model),
                        torch.device("cpu"))
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    args = argparse.Namespace(weights=str(text_model), prompt=prompt, max_new_tokens=n,
                              temperature=0.0, top_k=None, seed=0)
    out = _Recorder(calls)
    assert run_generate(spec, args, model, torch.device("cpu"), torch.float32, out=out) == 0

    tok = ByteTokenizer()
    reference = load_pretrained(TinyLlama, text_model)
    expected_ids = generate(reference, torch.tensor([tok.encode(prompt)]), n)[0, len(prompt):]
    text = "".join(chunk for _, chunk in out.chunks)
    assert text == prompt + tok.decode(expected_ids.tolist()) + "\n"
    # prompt, one write per token, final newline; token k is written after the prefill and
    # k-1 decode calls, i.e. before the call that computes token k+1
    assert len(out.chunks) == n + 2
    assert [c for c, _ in out.chunks[1:-1]] == list(range(1, n + 1))


def test_generate_through_the_cli_prints_the_prompt_and_tokens(text_model, capsys):
    assert cli_main(V1, ["--mode", "generate", "--weights", str(text_model), "--prompt", "The",
                         "--max-new-tokens", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("The")
    assert "v1: 5 tokens in" in captured.err


def test_generate_refuses_missing_weights_and_prompt(text_model, capsys):
    cases = [(["--mode", "generate", "--prompt", "x"], "needs --weights"),
             (["--mode", "generate", "--weights", str(text_model)], "needs --prompt"),
             (["--mode", "generate", "--weights", str(text_model), "--prompt", "abc",
               "--max-new-tokens", "14"], "exceeds the model's max_seq_len 16"),
             (["--mode", "prefill", "--save", "x"], "--save applies to --mode train only")]
    for argv, message in cases:     # one line on stderr and exit 2, as every user error
        with pytest.raises(SystemExit) as exc:
            cli_main(V1, argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_byte_tokenizer_round_trips_text_and_split_characters():
    rng = random.Random(3)
    alphabet = "abc XYZ\n\tß€😀é中"
    text = "".join(rng.choice(alphabet) for _ in range(257))
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert all(0 <= i < 256 for i in ids) and len(ids) > len(text)   # multi-byte chars
    assert tok.decode(ids) == text
    streamed = StreamDecoder()
    assert "".join(streamed.feed([i]) for i in ids) == text   # one id at a time
    assert tok.decode(tok.encode("end") + [ByteTokenizer.EOT]) == "end\n\n"
    with pytest.raises(ValueError, match="outside the byte vocabulary"):
        tok.decode([257])


def test_text_corpus_is_stdlib_text_in_windows():
    corpus = TextCorpus(modules=("textwrap", "json"))
    batch = corpus.sample(3, 50, generator=torch.Generator().manual_seed(0))
    assert batch.shape == (3, 50) and batch.dtype == torch.int64
    assert int(batch.max()) <= ByteTokenizer.EOT
    import inspect
    import textwrap
    text = corpus.tokenizer.decode(corpus.tokens.tolist())
    assert inspect.getdoc(textwrap.dedent)[:60] in text
    assert inspect.getdoc(json.dumps)[:60] in text
