"""KV-cache decode against full recompute, and generation limits."""
import pytest
import torch

from version1_baseline import TinyLlama, TinyLlamaConfig, generate

CFG = TinyLlamaConfig(vocab_size=61, hidden_size=48, num_layers=2, num_heads=6, num_kv_heads=2,
                      intermediate_size=72, max_seq_len=40)


@pytest.mark.parametrize("static", [False, True], ids=["KVCache", "StaticKVCache"])
@pytest.mark.parametrize("batch,prompt,steps", [(1, 1, 6), (3, 17, 8), (2, 30, 10)])
def test_cached_decode_equals_full_recompute(batch, prompt, steps, static):
    torch.manual_seed(batch * 100 + prompt)
    model = TinyLlama(CFG).eval()
    ids = torch.randint(0, CFG.vocab_size, (batch, prompt + steps))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(batch, static=static)
        # Poison the unwritten positions: a static cache's attention reads the whole
        # buffers, so anything but an exact mask of the tail would show.
        for buf in cache.k + cache.v:
            buf.fill_(1e4)
        pieces = [model(ids[:, :prompt], cache=cache)]
        for t in range(prompt, prompt + steps):
            pieces.append(model(ids[:, t:t + 1], cache=cache))
    assert cache.length == prompt + steps
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)


def test_greedy_generation_equals_argmax_of_full_recompute():
    torch.manual_seed(3)
    model = TinyLlama(CFG).eval()
    prompt = torch.randint(0, CFG.vocab_size, (2, 5))
    out = generate(model, prompt, max_new_tokens=12)
    assert out.shape == (2, 17)
    assert torch.equal(out[:, :5], prompt)
    with torch.no_grad():   # every generated token is the argmax given all tokens before it
        logits = model(out[:, :-1])
    assert torch.equal(logits[:, 4:].argmax(-1), out[:, 5:])


def test_sampling_is_seeded_and_respects_top_k():
    torch.manual_seed(4)
    model = TinyLlama(CFG).eval()
    prompt = torch.randint(0, CFG.vocab_size, (3, 4))
    a = generate(model, prompt, 10, temperature=1.0, top_k=5,
                 generator=torch.Generator().manual_seed(7))
    b = generate(model, prompt, 10, temperature=1.0, top_k=5,
                 generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with torch.no_grad():
        logits = model(a[:, :-1])[:, 3:]
    top5 = logits.topk(5, dim=-1).indices
    assert (top5 == a[:, 4:, None]).any(-1).all(), "a sampled token lay outside the top-k"


def test_generation_past_max_seq_len_is_refused_before_any_work():
    model = TinyLlama(CFG)
    prompt = torch.zeros(1, 30, dtype=torch.long)
    with pytest.raises(ValueError, match="exceeds max_seq_len 40"):
        generate(model, prompt, max_new_tokens=11)
    assert generate(model, prompt, max_new_tokens=10).shape == (1, 40)


@pytest.mark.parametrize("static", [False, True], ids=["KVCache", "StaticKVCache"])
def test_cache_position_moves_only_through_its_methods(static):
    """``length`` is read-only; write/advance/rewind/reset move it, and a rewound cache
    decodes the same logits again (what the decode benchmark relies on)."""
    torch.manual_seed(3)
    cfg = TinyLlamaConfig(vocab_size=37, hidden_size=24, num_layers=2, num_heads=3,
                          num_kv_heads=1, intermediate_size=40, max_seq_len=11)
    model = TinyLlama(cfg).eval()
    ids = torch.randint(0, 37, (2, 9))
    cache = model.new_cache(2, static=static)
    assert isinstance(cache.start, torch.Tensor) == static
    with pytest.raises(AttributeError):
        cache.length = 3
    with torch.no_grad():
        model(ids[:, :8], cache=cache)
        first = model(ids[:, 8:], cache=cache)
        assert cache.length == 9
        k, v, pos = cache.layer_storage(1)
        assert pos == 9 and k.shape == v.shape == (2, 1, 11, 8)
        with pytest.raises(ValueError, match="rewind only to a cached position 0..9"):
            cache.rewind(10)
        cache.rewind(8)
        again = model(ids[:, 8:], cache=cache)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    torch.testing.assert_close(first, model(ids)[:, 8:], rtol=1e-5, atol=1e-5)
    cache.reset()
    assert cache.length == 0
