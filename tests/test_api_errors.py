"""The Python API's boundary: build_model, run_workload, run_preset, configs and the model
constructors refuse bad values with a sentence naming them, before any work is done.

Bad values raise ``UserError`` (a ``ValueError``); a wrong type raises ``TypeError``.
"""
import math

import pytest
import torch

from benchmarks import compare, runner
from benchmarks.cli import parse_options
from benchmarks.compare import BenchSettings, run_preset
from benchmarks.runner import run_workload
from benchmarks.versions import build_model
from version1_baseline import PRESETS, SPEC as V1, TinyLlama, TinyLlamaConfig, get_preset
from version1_baseline.errors import UnknownNameError, UserError
from version2_fused import SPEC as V2

CPU = torch.device("cpu")
CHIP = get_preset("chip16")


def _not_reached(*args, **kwargs):
    raise AssertionError("work started before the input was checked")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(config="tiny"), TypeError, r"TinyLlamaConfig, got str; for a preset use get_preset"),
    (dict(weights=[1, 2]), TypeError, "weights must be a state dict .* got list"),
    (dict(device="tpu0"), UserError, "unknown device 'tpu0'"),
    (dict(dtype=torch.int8), UserError, "dtype must be one of .* got torch.int8"),
    (dict(options=V2.options()), TypeError, "v1 takes options of type NoOptions"),
    (dict(spec="v1"), TypeError, "spec must be a VersionSpec"),
])
def test_build_model_refuses_bad_arguments(kwargs, error, match):
    args = dict(spec=V1, config=CHIP, weights=None, device=CPU)
    with pytest.raises(error, match=match):
        build_model(**{**args, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_build_model_refuses_cuda_without_gpu():
    with pytest.raises(UserError, match="'cuda' requested but no CUDA/ROCm GPU"):
        build_model(V1, CHIP, None, "cuda")


@pytest.mark.parametrize("changes, match", [
    (dict(steps=0), "steps must be positive, got 0"),
    (dict(warmup=-1), "warmup must be >= 0, got -1"),
    (dict(batch_size=0), "batch_size must be positive, got 0"),
    (dict(seq_len=0), "seq_len must be positive, got 0"),
    (dict(seq_len=17), "seq_len 17 exceeds the model's max_seq_len 16"),
    (dict(mode="decode", seq_len=1), "seq_len must be >= 2 for decode"),
    (dict(mode="sing"), r"unknown mode\(s\) \['sing'\]"),
    (dict(dtype=torch.float64), "dtype must be one of"),
])
def test_run_workload_refuses_bad_values_before_running(changes, match, monkeypatch):
    monkeypatch.setattr(runner, "make_workload", _not_reached)
    args = dict(version="v1", preset="chip16", mode="prefill", batch_size=1, seq_len=8,
                device=CPU, dtype=torch.float32, steps=2, warmup=0)
    with pytest.raises(UserError, match=match):
        run_workload(TinyLlama(CHIP), **{**args, **changes})


@pytest.mark.parametrize("settings, match", [
    (BenchSettings(seq_len=17), "seq_len 17 exceeds preset chip16's max_seq_len 16"),
    (BenchSettings(batch_size=-2), "batch_size must be positive, got -2"),
    (BenchSettings(steps=0), "steps must be positive, got 0"),
])
def test_run_preset_refuses_instead_of_clamping(settings, match, monkeypatch):
    monkeypatch.setattr(compare, "load_spec", _not_reached)
    with pytest.raises(UserError, match=match):
        run_preset(["v1"], "chip16", ["prefill"], CPU, settings)


def test_quick_cap_applies_to_the_default_seq_len_only():
    assert compare.workload_shape("tiny", ["prefill"], BenchSettings(default_seq_cap=64)) == (4, 64)
    assert compare.workload_shape("chip16", ["prefill"], BenchSettings(default_seq_cap=64)) == (1, 16)
    assert compare.workload_shape("tiny", ["prefill"],
                                  BenchSettings(seq_len=100, default_seq_cap=64)) == (4, 100)


@pytest.mark.parametrize("changes, match", [
    (dict(rope_theta=math.nan), "rope_theta must be a positive finite number, got nan"),
    (dict(rope_theta="1e4"), "rope_theta must be a positive finite number, got '1e4'"),
    (dict(rms_norm_eps=0.0), "rms_norm_eps must be a positive finite number, got 0.0"),
    (dict(tie_word_embeddings="yes"), "tie_word_embeddings must be a bool, got 'yes'"),
    (dict(num_layers=0), "num_layers must be a positive int, got 0"),
    (dict(hidden_size=17), "divisible by num_heads"),
])
def test_config_refuses_bad_values(changes, match):
    with pytest.raises(UserError, match=match):
        CHIP.replace(**changes)


@pytest.mark.parametrize("package", ["version1_baseline", "version2_fused", "version3_triton",
                                     "version4_ultra"])
def test_model_constructors_refuse_a_non_config(package):
    import importlib
    model_cls = importlib.import_module(package).TinyLlama
    with pytest.raises(TypeError, match=r"got str; for a preset use get_preset\('tiny'\)"):
        model_cls("tiny")
    with pytest.raises(TypeError, match="got dict; for a config.json dict use .*from_hf_dict"):
        model_cls(CHIP.to_dict())


def test_unknown_preset_is_a_user_error_and_a_key_error():
    with pytest.raises(UnknownNameError) as info:
        get_preset("huge")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UserError)
    assert str(info.value) == f"unknown preset 'huge'; choose one of {sorted(PRESETS)}"


def test_parse_options_names_the_flag():
    with pytest.raises(UserError, match=r"--fusions 'qkv,flash': unknown fusion switch"):
        parse_options(V2, ["--fusions", "qkv,flash"])
    with pytest.raises(UserError, match="invalid choice: 'fastest'"):
        parse_options(V2, ["--compile", "fastest"])
    assert TinyLlamaConfig() == TinyLlamaConfig()      # the defaults still build
