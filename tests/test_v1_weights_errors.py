"""Checkpoints that used to load wrongly without a word (issue 16): each is now loaded as
``transformers`` loads it, or refused naming the file and the key.

Every folder is a real Hugging Face folder written by ``transformers.save_pretrained``
from a tiny random config, then edited the way a user's file might be.
"""
import json
import warnings

import pytest
import torch

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.model import TinyLlama as V1
from version1_baseline.weights import read_config, read_state_dict
from version2_fused import TinyLlama as V2

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

CONFIG = TinyLlamaConfig(vocab_size=37, hidden_size=24, num_layers=2, num_heads=4,
                         num_kv_heads=2, intermediate_size=40, max_seq_len=16,
                         tie_word_embeddings=True)


def write_hf_folder(folder, config=CONFIG, seed=0, max_shard_size=None):
    torch.manual_seed(seed)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config.to_hf_dict()))
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    hf.save_pretrained(folder, **kwargs)
    return folder


def hf_logits(folder, ids):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager")
    hf.eval()
    with torch.no_grad():
        return hf(ids).logits


def edit_config(folder, **changes):
    cfg_file = folder / "config.json"
    data = json.loads(cfg_file.read_text())
    data.update(changes)
    cfg_file.write_text(json.dumps(data))


# ---- RoPE scaling, whichever key carries it ----------------------------------------------
@pytest.mark.parametrize("changes, key", [
    ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
    ({"rope_scaling": {"type": "dynamic", "factor": 4.0}}, "rope_scaling"),
    ({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}},
     "rope_parameters"),
], ids=["scaling-linear-beside-default-parameters", "scaling-legacy-type", "parameters-linear"])
def test_rope_scaling_is_refused_naming_file_and_key(tmp_path, changes, key):
    folder = write_hf_folder(tmp_path)
    edit_config(folder, **changes)  # save_pretrained wrote rope_parameters {'default'}
    hf_config = transformers.LlamaConfig.from_pretrained(folder)
    assert hf_config.rope_parameters["rope_type"] != "default"  # transformers would scale
    with pytest.raises(ValueError, match=rf"config\.json: {key} has rope_type="):
        V1.from_pretrained(folder)
    with pytest.raises(ValueError, match=key):
        V2.from_pretrained(folder)


def test_default_rope_in_both_keys_still_loads_and_matches_transformers(tmp_path):
    folder = write_hf_folder(tmp_path)
    edit_config(folder, rope_scaling={"rope_type": "default", "rope_theta": 500.0},
                rope_theta=500.0)
    ids = torch.randint(CONFIG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    model = V1.from_pretrained(folder)
    assert model.config.rope_theta == 500.0
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf_logits(folder, ids), atol=2e-5, rtol=1e-4)


# ---- tied config, different head in the file ---------------------------------------------
@pytest.mark.parametrize("version", [V1, V2], ids=["v1", "v2"])
def test_tied_config_with_a_different_head_matches_transformers(tmp_path, version):
    folder = write_hf_folder(tmp_path)
    weights = folder / "model.safetensors"
    state = safetensors_torch.load_file(str(weights))
    assert "lm_head.weight" not in state  # transformers dropped the tied duplicate
    head = torch.randn(CONFIG.vocab_size, CONFIG.hidden_size,
                       generator=torch.Generator().manual_seed(2))
    state["lm_head.weight"] = head
    safetensors_torch.save_file(state, str(weights), metadata={"format": "pt"})

    ids = torch.randint(CONFIG.vocab_size, (2, 11), generator=torch.Generator().manual_seed(3))
    with pytest.warns(UserWarning, match=r"tie_word_embeddings=true .*lm_head\.weight"):
        model = version.from_pretrained(folder)
    model.eval()
    # the embedding is the file's embedding, the head the file's head, as in transformers
    hf_state = model.to_hf_state_dict()
    assert torch.equal(hf_state["model.embed_tokens.weight"], state["model.embed_tokens.weight"])
    assert torch.equal(hf_state["lm_head.weight"], head)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf_logits(folder, ids), atol=2e-5, rtol=1e-4)


def test_tied_model_refuses_a_state_dict_with_a_different_head():
    """The lower-level path (a tied model and a raw state dict) cannot untie: it refuses
    instead of letting the head silently overwrite the shared embedding."""
    torch.manual_seed(5)
    state = V1(CONFIG).state_dict()
    state["lm_head.weight"] = torch.randn_like(state["lm_head.weight"])
    with pytest.raises(ValueError, match=r"tie_word_embeddings is true but lm_head\.weight"):
        V1.from_hf_state_dict(CONFIG, state)


# ---- unreadable files name themselves -----------------------------------------------------
def test_config_that_is_not_json_names_the_file(tmp_path):
    folder = write_hf_folder(tmp_path)
    (folder / "config.json").write_text('{"vocab_size": 37,, oops')
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON .*line 1"):
        read_config(folder)


def test_truncated_safetensors_names_the_file(tmp_path):
    folder = write_hf_folder(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors: cannot read the weights .*truncated"):
        read_state_dict(folder)
    with pytest.raises(ValueError, match=r"model\.safetensors: cannot read"):
        V2.from_pretrained(folder)


def test_truncated_shard_names_the_shard(tmp_path):
    folder = write_hf_folder(tmp_path, max_shard_size="20KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3, shards
    victim = folder / shards[1]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{shards[1]}: cannot read shard 2 of {len(shards)} "
                                         r"listed in model\.safetensors\.index\.json"):
        read_state_dict(folder)


def test_shard_index_that_is_not_json_names_the_file(tmp_path):
    folder = write_hf_folder(tmp_path, max_shard_size="20KB")
    (folder / "model.safetensors.index.json").write_text("[1, 2")
    with pytest.raises(ValueError, match=r"model\.safetensors\.index\.json: not valid JSON"):
        read_state_dict(folder)


def test_sharded_folder_still_loads_and_matches_transformers(tmp_path):
    folder = write_hf_folder(tmp_path, max_shard_size="20KB")
    ids = torch.randint(CONFIG.vocab_size, (1, 7), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(V1.from_pretrained(folder)(ids), hf_logits(folder, ids),
                                   atol=2e-5, rtol=1e-4)
