"""torch.compile of decode traces one graph for every position with a ``StaticKVCache``.

A compiling backend that only counts the graphs Dynamo hands it (and runs them as traced)
shows how many compilations a generate() costs, under the default recompile limit and
``dynamic=False`` (what the compile peer uses). The tokens must equal eager generation's.
"""
import pytest
import torch
import torch._dynamo

from version1_baseline import TinyLlama, TinyLlamaConfig, generate
from version2_fused import FusionConfig
from version2_fused import model as v2

CFG = TinyLlamaConfig(vocab_size=61, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                      intermediate_size=48, max_seq_len=24)


def _compiled_generate(model, prompt, new_tokens):
    """(tokens, number of graphs compiled) of generate() through torch.compile."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=counting_backend, dynamic=False)
    compiled.config, compiled.new_cache = model.config, model.new_cache
    try:
        return generate(compiled, prompt, new_tokens), len(graphs)
    finally:
        torch._dynamo.reset()


def _models():
    torch.manual_seed(11)
    yield "v1", TinyLlama(CFG).eval()
    yield "v2", v2.TinyLlama(CFG, FusionConfig()).eval()   # fused QKV, SDPA, joint RoPE


@pytest.mark.parametrize("name,model", list(_models()), ids=["v1", "v2"])
def test_static_cache_decode_compiles_once_for_every_position(name, model):
    limit = torch._dynamo.config.recompile_limit
    new_tokens = limit + 1            # more decode positions than the limit allows graphs
    prompt = torch.randint(0, CFG.vocab_size, (2, 5), generator=torch.Generator().manual_seed(4))
    expected = generate(model, prompt, new_tokens)

    model.static_kv_cache = True
    tokens, graphs = _compiled_generate(model, prompt, new_tokens)
    # One graph for the prefill (5 tokens), one for every decode step (1 token).
    assert graphs == 2, f"{name}: {graphs} graphs for {new_tokens} tokens"
    assert torch.equal(tokens, expected)


def test_int_position_cache_compiles_once_per_position():
    """The control: with an int position each decode step is its own graph (so the count
    above would see a per-position recompile), until the limit turns compilation off."""
    model = TinyLlama(CFG).eval()
    prompt = torch.randint(0, CFG.vocab_size, (1, 3), generator=torch.Generator().manual_seed(5))
    _, graphs = _compiled_generate(model, prompt, 3)
    assert graphs == 3                # the prefill and decode at positions 3 and 4
