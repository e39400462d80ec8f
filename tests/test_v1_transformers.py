"""Version 1 against transformers.LlamaForCausalLM: the root of the whole reference chain."""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from version1_baseline import TinyLlama, TinyLlamaConfig, get_preset  # noqa: E402

CONFIGS = {
    "gqa": TinyLlamaConfig(vocab_size=97, hidden_size=64, num_layers=2, num_heads=8,
                           num_kv_heads=2, intermediate_size=96, max_seq_len=64),
    "mha_tied": TinyLlamaConfig(vocab_size=50, hidden_size=48, num_layers=3, num_heads=6,
                                num_kv_heads=6, intermediate_size=80, max_seq_len=40,
                                tie_word_embeddings=True),
    "mqa_theta": TinyLlamaConfig(vocab_size=33, hidden_size=32, num_layers=1, num_heads=4,
                                 num_kv_heads=1, intermediate_size=64, max_seq_len=32,
                                 rope_theta=500.0, rms_norm_eps=1e-5),
    "chip16": get_preset("chip16"),
}


def _hf_model(cfg: TinyLlamaConfig):
    hf_cfg = transformers.LlamaConfig(**{k: v for k, v in cfg.to_hf_dict().items()
                                         if k not in ("architectures", "model_type")})
    hf_cfg._attn_implementation = "eager"
    return transformers.LlamaForCausalLM(hf_cfg).eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_match_transformers_after_loading_its_folder(name, tmp_path):
    cfg = CONFIGS[name]
    torch.manual_seed(hash(name) % 2**31)
    hf = _hf_model(cfg)
    with torch.no_grad():   # HF's default init leaves norm weights at 1: randomize them too
        for p in hf.parameters():
            p.normal_(0, 0.5 if p.dim() == 1 else 0.05)
    hf.save_pretrained(tmp_path)
    ours = TinyLlama.from_pretrained(tmp_path).eval()
    assert set(ours.state_dict()) == set(hf.state_dict())
    ids = torch.randint(0, cfg.vocab_size, (3, cfg.max_seq_len - 5))
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == (3, cfg.max_seq_len - 5, cfg.vocab_size)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_transformers_loads_what_we_save(tmp_path):
    cfg = CONFIGS["gqa"]
    torch.manual_seed(1)
    ours = TinyLlama(cfg).eval()
    ours.save_pretrained(tmp_path)
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 17))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, rtol=1e-5, atol=1e-5)


def test_loss_matches_transformers_shifted_labels():
    from version1_baseline import causal_lm_loss
    cfg = CONFIGS["gqa"]
    hf = _hf_model(cfg)
    ours = TinyLlama.from_hf_state_dict(cfg, hf.state_dict())
    ids = torch.randint(0, cfg.vocab_size, (2, 23))
    with torch.no_grad():
        torch.testing.assert_close(causal_lm_loss(ours(ids), ids), hf(ids, labels=ids).loss,
                                   rtol=1e-5, atol=1e-6)


def test_from_pretrained_errors_are_clear(tmp_path):
    cfg = CONFIGS["gqa"]
    TinyLlama(cfg).save_pretrained(tmp_path / "ok")
    with pytest.raises(FileNotFoundError, match="config.json"):
        (tmp_path / "empty").mkdir()
        TinyLlama.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        TinyLlama.from_pretrained(tmp_path / "nope")

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tmp_path / "ok" / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="safetensors"):
        TinyLlama.from_pretrained(no_weights)

    hf_cfg = json.loads((tmp_path / "ok" / "config.json").read_text())
    other = dict(hf_cfg, model_type="mistral", architectures=["MistralForCausalLM"])
    (no_weights / "config.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="unsupported architecture"):
        TinyLlama.from_pretrained(no_weights)

    # Weights of one shape, config of another: the mismatch is named.
    wrong = tmp_path / "wrong_shape"
    TinyLlama(cfg.replace(intermediate_size=64)).save_pretrained(wrong)
    (wrong / "config.json").write_text(json.dumps(hf_cfg))
    with pytest.raises(ValueError, match="shape mismatch for .*mlp"):
        TinyLlama.from_pretrained(wrong)
