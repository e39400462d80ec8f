"""Version 2 against version 1: logits, gradients, training, KV cache, every switch alone."""
import pytest
import torch

from version1_baseline import MarkovCorpus, get_preset, train
from version1_baseline.config import TinyLlamaConfig
from version1_baseline.model import TinyLlama as V1
from version2_fused import SWITCHES, FusionConfig, TinyLlama as V2
from version2_fused.model import unfuse_state_dict

ATOL, RTOL = 2e-5, 1e-4

CONFIGS = {
    "mha": TinyLlamaConfig(vocab_size=67, hidden_size=32, num_layers=2, num_heads=4,
                           num_kv_heads=4, intermediate_size=64, max_seq_len=24),
    "gqa": TinyLlamaConfig(vocab_size=67, hidden_size=64, num_layers=2, num_heads=8,
                           num_kv_heads=2, intermediate_size=96, max_seq_len=24),
    "mqa_tied": TinyLlamaConfig(vocab_size=67, hidden_size=32, num_layers=2, num_heads=4,
                                num_kv_heads=1, intermediate_size=64, max_seq_len=24,
                                tie_word_embeddings=True),
    # Deliberately odd: head_dim 8, 3 query heads per kv head, odd intermediate, seq 17.
    "odd": TinyLlamaConfig(vocab_size=101, hidden_size=48, num_layers=3, num_heads=6,
                           num_kv_heads=2, intermediate_size=123, max_seq_len=17),
}


def pair(config, fusions=None, seed=None):
    """A fresh version-1 model and a version-2 model holding the same weights."""
    if seed is not None:
        torch.manual_seed(seed)
    ref = V1(config)
    return ref, V2.from_hf_state_dict(config, ref.state_dict(), fusions)


def random_ids(config, batch, seq):
    return torch.randint(config.vocab_size, (batch, seq))


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("batch", [1, 3])
def test_logits_match_v1(name, batch):
    config = CONFIGS[name]
    ref, fused = pair(config)
    ids = random_ids(config, batch, config.max_seq_len)
    with torch.no_grad():
        expected, got = ref(ids), fused(ids)
    assert got.shape == (batch, config.max_seq_len, config.vocab_size)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("switch", ["none", *SWITCHES])
def test_each_switch_alone_gives_v1_logits(switch):
    config = CONFIGS["odd"]
    fusions = FusionConfig.none() if switch == "none" else FusionConfig.only(switch)
    assert fusions.enabled() == ([] if switch == "none" else [switch])
    ref, fused = pair(config, fusions)
    ids = random_ids(config, 3, 13)
    with torch.no_grad():
        torch.testing.assert_close(fused(ids), ref(ids), atol=ATOL, rtol=RTOL)


def test_fused_modules_are_really_in_place():
    """The 'all' model must actually contain the fused modules (not v1's)."""
    model = V2(CONFIGS["gqa"])
    layer = model.model.layers[0]
    names = {n for n, _ in model.named_parameters()}
    assert "model.layers.0.self_attn.qkv_proj.weight" in names
    assert "model.layers.0.mlp.gate_up_proj.weight" in names
    assert not any(n.endswith(("q_proj.weight", "gate_proj.weight")) for n in names)
    assert type(layer.input_layernorm).__name__ == "FusedRMSNorm"
    assert layer.self_attn.core.__name__ == "sdpa_attention"


def grads_by_name(model):
    """Gradient of every parameter by state-dict name (a tied head appears under both)."""
    return {n: p.grad for n, p in model.named_parameters(remove_duplicate=False)}


@pytest.mark.parametrize("name", ["gqa", "mqa_tied", "odd"])
def test_gradients_match_v1(name):
    from version1_baseline.train import causal_lm_loss

    config = CONFIGS[name]
    ref, fused = pair(config)
    ids = random_ids(config, 3, config.max_seq_len)
    for model in (ref, fused):
        causal_lm_loss(model(ids), ids).backward()
    expected = grads_by_name(ref)
    got = unfuse_state_dict(grads_by_name(fused), config, fused.fusions)  # back to HF names
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert expected[key].abs().max() > 0, f"{key} got no gradient in v1"
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_twenty_step_loss_trajectory_matches_v1():
    config = get_preset("chip16").replace(hidden_size=32, num_heads=4, num_kv_heads=2,
                                          num_layers=2, intermediate_size=64, max_seq_len=32)
    ref, fused = pair(config, seed=0)
    corpus = MarkovCorpus(config.vocab_size, seed=3)
    expected = train(ref, corpus, steps=20, batch_size=4, seq_len=32, seed=5)
    got = train(fused, corpus, steps=20, batch_size=4, seq_len=32, seed=5)
    assert expected[-1] < expected[0] - 0.3, "v1 did not learn; the comparison would be empty"
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("static", [False, True], ids=["KVCache", "StaticKVCache"])
@pytest.mark.parametrize("fusions", [FusionConfig(), FusionConfig.only("sdpa"),
                                     FusionConfig.none()], ids=["all", "sdpa", "none"])
def test_kv_cache_decode_equals_full_recompute(fusions, static):
    """Prefill 5, a chunk of 4 (several queries after a cache: the explicit-mask path),
    then single tokens (no mask), against one forward over the whole sequence. A static
    cache (whole buffers, position tensor: always the explicit mask) is poisoned past the
    filled positions, so a mask that let one through would show."""
    config = CONFIGS["gqa"]
    _, model = pair(config, fusions)
    model.eval()
    ids = random_ids(config, 3, 14)
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(3, static=static)
        for buf in cache.k + cache.v:
            buf.fill_(1e4)
        pieces = [model(ids[:, :5], cache=cache), model(ids[:, 5:9], cache=cache)]
        pieces += [model(ids[:, t:t + 1], cache=cache) for t in range(9, 14)]
    assert cache.length == 14
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=RTOL)


def test_generate_matches_v1():
    from version1_baseline import generate

    config = CONFIGS["odd"]
    ref, fused = pair(config)
    prompt = random_ids(config, 2, 5)
    assert torch.equal(generate(fused, prompt, 10), generate(ref, prompt, 10))


def test_fresh_v2_has_v1_init_and_leaves_rng_alone():
    config = CONFIGS["gqa"]
    torch.manual_seed(11)
    ref = V1(config)
    after_v1 = torch.rand(3)
    torch.manual_seed(11)
    fused = V2(config)
    after_v2 = torch.rand(3)
    assert torch.equal(after_v1, after_v2)
    for key, value in ref.state_dict().items():
        assert torch.equal(fused.to_hf_state_dict()[key], value), key
