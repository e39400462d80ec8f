"""Bad input gets a clear exception at the boundary."""
import pytest
import torch

from version1_baseline import TinyLlama, TinyLlamaConfig, get_preset

CFG = TinyLlamaConfig(vocab_size=50, hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=2,
                      intermediate_size=64, max_seq_len=16)


@pytest.fixture(scope="module")
def model():
    return TinyLlama(CFG).eval()


@pytest.mark.parametrize("ids,error,match", [
    (torch.tensor([[1, 50]]), ValueError, r"\[0, 50\).*\[1, 50\]"),
    (torch.tensor([[-1, 3]]), ValueError, r"\[0, 50\)"),
    (torch.zeros(1, 17, dtype=torch.long), ValueError, "exceeds max_seq_len 16"),
    (torch.zeros(1, 4), TypeError, "int64 or int32"),
    (torch.zeros(0, 4, dtype=torch.long), ValueError, "empty"),
    (torch.zeros(1, 0, dtype=torch.long), ValueError, "empty"),
    (torch.zeros(4, dtype=torch.long), ValueError, r"\(batch, seq\)"),
    ([[1, 2]], TypeError, "torch.Tensor"),
])
def test_bad_input_ids(model, ids, error, match):
    with pytest.raises(error, match=match):
        model(ids)


def test_cache_overflow_and_batch_mismatch(model):
    cache = model.new_cache(2)
    model(torch.zeros(2, 10, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="after 10 cached tokens exceeds max_seq_len 16"):
        model(torch.zeros(2, 7, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="batch 3 does not match the KV cache batch 2"):
        model(torch.zeros(3, 1, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("changes,match", [
    (dict(hidden_size=30), "divisible by num_heads"),
    (dict(num_kv_heads=3), "multiple of num_kv_heads"),
    (dict(vocab_size=0), "vocab_size must be a positive int"),
    (dict(num_heads=16, num_kv_heads=4, hidden_size=48), "head_dim .* even"),
])
def test_bad_config(changes, match):
    with pytest.raises(ValueError, match=match):
        CFG.replace(**changes)


def test_unknown_preset_lists_choices():
    with pytest.raises(KeyError, match="chip16"):
        get_preset("huge")


def test_presets_have_the_documented_shapes():
    tiny, small, medium = get_preset("tiny"), get_preset("small"), get_preset("medium")
    assert (tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.num_kv_heads,
            tiny.intermediate_size, tiny.max_seq_len, tiny.vocab_size) == (256, 4, 8, 4, 512, 128, 1000)
    assert (small.hidden_size, small.num_layers, small.intermediate_size, small.max_seq_len,
            small.batch_size) == (512, 8, 1408, 256, 8)
    assert (medium.hidden_size, medium.num_layers, medium.num_heads, medium.num_kv_heads,
            medium.intermediate_size, medium.max_seq_len, medium.batch_size) == (1024, 12, 16, 8, 2816, 512, 16)
    chip = get_preset("chip16")
    assert (chip.hidden_size, chip.max_seq_len) == (16, 16)
    model = TinyLlama(tiny)
    assert sum(p.numel() for p in model.parameters()) == tiny.num_parameters()


@pytest.mark.parametrize("package", ["version1_baseline", "version2_fused", "version3_triton",
                                     "version4_ultra"])
def test_every_version_accepts_the_tinyllama_preset(package):
    """The real TinyLlama-1.1B shape; built on the meta device (no 4.4 GB of fp32 weights)."""
    import importlib

    import torch

    cfg = get_preset("tinyllama-1.1b")
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads,
            cfg.intermediate_size, cfg.vocab_size, cfg.max_seq_len, cfg.head_dim) == \
        (2048, 22, 32, 4, 5632, 32000, 2048, 64)
    # 1,100,048,384: the parameter count of the published TinyLlama-1.1B checkpoint.
    assert cfg.num_parameters() == 1_100_048_384
    spec = importlib.import_module(package).SPEC
    with torch.device("meta"):
        model = spec.model_cls(cfg)
    assert sum(p.numel() for p in model.parameters()) == 1_100_048_384
    assert len(model.model.layers) == 22
