"""Bad input gets version 1's errors; impossible fusion switches get clear ones."""
import shutil

import pytest
import torch

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.model import TinyLlama as V1
from version2_fused import FusionConfig, FusionUnavailableError, TinyLlama as V2, fusions
from version2_fused.attention import expand_kv_heads, sdpa_attention

CONFIG = TinyLlamaConfig(vocab_size=50, hidden_size=32, num_layers=1, num_heads=4,
                         num_kv_heads=2, intermediate_size=64, max_seq_len=12)


def _error_of(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


BAD_INPUTS = {
    "id_too_large": lambda: torch.tensor([[1, 50, 3]]),
    "negative_id": lambda: torch.tensor([[1, -1, 3]]),
    "too_long": lambda: torch.randint(50, (2, 13)),
    "float_dtype": lambda: torch.rand(2, 5),
    "empty_batch": lambda: torch.zeros(0, 5, dtype=torch.long),
    "empty_seq": lambda: torch.zeros(2, 0, dtype=torch.long),
    "one_dim": lambda: torch.randint(50, (5,)),
    "not_a_tensor": lambda: [[1, 2, 3]],
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_the_same_error_as_v1(case):
    torch.manual_seed(0)
    ref = V1(CONFIG)
    model = V2.from_hf_state_dict(CONFIG, ref.state_dict())
    bad = BAD_INPUTS[case]()
    expected = _error_of(lambda: ref(bad))
    assert expected[0] in (TypeError, ValueError)
    assert _error_of(lambda: model(bad)) == expected


@pytest.mark.parametrize("case", ["overflow", "batch_mismatch"])
def test_bad_cache_use_raises_the_same_error_as_v1(case):
    ref = V1(CONFIG)
    model = V2.from_hf_state_dict(CONFIG, ref.state_dict())
    errors = []
    for m in (ref, model):
        cache = m.new_cache(2)
        m(torch.randint(50, (2, 10)), cache=cache)
        bad = torch.randint(50, (2, 3)) if case == "overflow" else torch.randint(50, (3, 1))
        errors.append(_error_of(lambda: m(bad, cache=cache)))
    assert errors[0][0] is ValueError
    assert errors[1] == errors[0]


def test_unknown_compile_mode_names_the_choices():
    with pytest.raises(ValueError, match="unknown torch.compile mode 'fastest'.*max-autotune"):
        FusionConfig(compile_mode="fastest")


def test_unknown_switch_name_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown fusion switch\(es\) \['qvk'\].*gate_up"):
        FusionConfig.from_names(["qkv", "qvk"])


def test_switch_must_be_bool():
    with pytest.raises(TypeError, match="fused_qkv must be a bool"):
        FusionConfig(fused_qkv="yes")


def test_compile_requested_on_a_torch_without_compile(monkeypatch):
    monkeypatch.setattr(fusions, "HAS_COMPILE", False)
    FusionConfig().check_supported()            # no compile asked: fine
    with pytest.raises(FusionUnavailableError, match="has no torch.compile"):
        V2(CONFIG, FusionConfig(compile_mode="default"))


@pytest.mark.parametrize("flag, switch, message", [
    ("HAS_RMS_NORM", "rms_norm", "has no F.rms_norm"),
    ("HAS_SDPA", "sdpa", "has no F.scaled_dot_product_attention")])
def test_fusion_missing_from_this_torch(monkeypatch, flag, switch, message):
    monkeypatch.setattr(fusions, flag, False)
    with pytest.raises(FusionUnavailableError, match=message):
        V2(CONFIG, FusionConfig.only(switch))
    V2(CONFIG, FusionConfig.none())              # the other switches still build


def test_compile_on_cpu_without_a_cxx_compiler(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = V2(CONFIG, FusionConfig(compile_mode="default"))
    with pytest.raises(FusionUnavailableError, match="needs a C.. compiler"):
        fusions.compile_model(model, torch.device("cpu"))


def test_expand_kv_heads_is_a_view_where_possible():
    one_kv = torch.randn(2, 1, 5, 8)
    expanded = expand_kv_heads(one_kv, 4)
    assert expanded.shape == (2, 4, 5, 8) and expanded.stride(1) == 0
    assert expanded.data_ptr() == one_kv.data_ptr()
    two_kv = torch.randn(2, 2, 5, 8)
    torch.testing.assert_close(expand_kv_heads(two_kv, 3),
                               two_kv.repeat_interleave(3, dim=1), atol=0, rtol=0)


def test_sdpa_without_native_gqa_matches_native(monkeypatch):
    """The fallback for torches without enable_gqa gives the native result."""
    q, k, v = torch.randn(2, 6, 7, 8), torch.randn(2, 2, 9, 8), torch.randn(2, 2, 9, 8)
    native = sdpa_attention(q, k, v, past=2)
    monkeypatch.setattr(fusions, "HAS_NATIVE_GQA", False)
    torch.testing.assert_close(sdpa_attention(q, k, v, past=2), native, atol=1e-6, rtol=1e-5)
