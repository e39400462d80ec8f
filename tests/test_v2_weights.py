"""Version 2 reads and writes the Hugging Face Llama layout, through its fused parameters."""
import pytest
import torch

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.model import TinyLlama as V1
from version2_fused import FusionConfig, TinyLlama as V2

transformers = pytest.importorskip("transformers")

GQA = TinyLlamaConfig(vocab_size=71, hidden_size=48, num_layers=2, num_heads=6, num_kv_heads=2,
                      intermediate_size=100, max_seq_len=20)
TIED = GQA.replace(tie_word_embeddings=True, num_kv_heads=3)


def hf_logits(folder, ids):
    hf = transformers.LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager")
    hf.eval()
    with torch.no_grad():
        return hf(ids).logits


@pytest.mark.parametrize("config", [GQA, TIED], ids=["gqa", "tied"])
def test_save_pretrained_loads_in_transformers(tmp_path, config):
    model = V2(config)
    model.eval()
    ids = torch.randint(config.vocab_size, (2, 15))
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        ours = model(ids)
    torch.testing.assert_close(hf_logits(tmp_path, ids), ours, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("fusions", [FusionConfig(), FusionConfig.none()], ids=["all", "none"])
def test_from_pretrained_of_a_transformers_folder(tmp_path, fusions):
    hf_config = transformers.LlamaConfig(**GQA.to_hf_dict())
    torch.manual_seed(4)
    hf = transformers.LlamaForCausalLM(hf_config)
    hf.save_pretrained(tmp_path)
    ids = torch.randint(GQA.vocab_size, (3, 20))
    model = V2.from_pretrained(tmp_path, fusions=fusions)
    assert model.config == GQA
    assert model.fusions == fusions
    with torch.no_grad():
        ours = model(ids)
    torch.testing.assert_close(ours, hf_logits(tmp_path, ids), atol=2e-5, rtol=1e-4)


def test_hf_layout_round_trip_is_exact():
    """v1 state -> v2 (fused) -> HF layout gives back exactly the same tensors and keys,
    and the fused weight really is the concatenation."""
    torch.manual_seed(2)
    ref = V1(GQA)
    model = V2.from_hf_state_dict(GQA, ref.state_dict())
    back = model.to_hf_state_dict()
    assert sorted(back) == sorted(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert torch.equal(back[key], value), key
    attn = ref.model.layers[1].self_attn
    expected_qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
    assert torch.equal(model.model.layers[1].self_attn.qkv_proj.weight, expected_qkv)
    # Split tensors must not share storage with each other (safetensors refuses that).
    ptrs = [back[f"model.layers.0.self_attn.{p}.weight"].untyped_storage().data_ptr()
            for p in ("q_proj", "k_proj", "v_proj")]
    assert len(set(ptrs)) == 3


def test_reload_saved_v2_into_v1_and_v2(tmp_path):
    model = V2(GQA)
    model.save_pretrained(tmp_path)
    ids = torch.randint(GQA.vocab_size, (2, 9))
    with torch.no_grad():
        expected = model(ids)
        torch.testing.assert_close(V1.from_pretrained(tmp_path)(ids), expected,
                                   atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(V2.from_pretrained(tmp_path)(ids), expected,
                                   atol=0, rtol=0)


def test_bad_state_dict_is_rejected_with_the_key():
    state = V1(GQA).state_dict()
    del state["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match="up_proj"):
        V2.from_hf_state_dict(GQA, state)
    state = V1(GQA).state_dict()
    state["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(3, 48)
    with pytest.raises(ValueError, match="shape mismatch for model.layers.0.self_attn.k_proj"):
        V2.from_hf_state_dict(GQA, state)
