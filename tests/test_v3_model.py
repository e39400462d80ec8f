"""Version 3 (Triton kernels) against version 1: logits, gradients, training, decode (v3).

Runs in the Triton interpreter where there is no GPU, so the model is kept small:
head_dim 16, GQA 4:2, odd intermediate size and vocabulary.
"""
import pytest
import torch

import version1_baseline as v1
import version2_fused as v2
import version3_triton as v3
from benchmarks.cli import main

from parity import assert_gradients_match, assert_training_matches, make_pair, token_ids
from version3_triton import runtime

DEV = runtime.DEVICE
CONFIG = v1.TinyLlamaConfig(vocab_size=97, hidden_size=64, num_layers=2, num_heads=4,
                            num_kv_heads=2, intermediate_size=88, max_seq_len=32, batch_size=2)


def pair(config=CONFIG, seed=0):
    return make_pair(v3.TinyLlama, config, seed, DEV)


def ids(bsz, seq, seed=0):
    return token_ids(CONFIG.vocab_size, bsz, seq, seed, DEV)


@pytest.mark.parametrize("bsz,seq", [(1, 1), (2, 17), (5, 9)])
def test_logits_match_v1(bsz, seq):
    ref, model = pair()
    x = ids(bsz, seq)
    with torch.no_grad(), runtime.poison_outputs():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)


def test_every_parameter_gradient_matches_v1():
    ref, model = pair()
    x = ids(2, 17)
    with runtime.poison_outputs():
        v3.causal_lm_loss(model, x).backward()
    v1.causal_lm_loss(ref(x), x).backward()
    assert_gradients_match(model, ref)


def test_kernels_run_in_forward_and_backward():
    """Every Triton kernel is launched by the model, both ways: none is 'active' but idle."""
    _, model = pair()
    x = ids(2, 9)
    runtime.CALLS.clear()
    v3.causal_lm_loss(model, x).backward()
    layers = CONFIG.num_layers
    for kernel, per_pass in (("rms_norm", 2 * layers + 1), ("rope", layers),
                             ("flash_attention", layers), ("swiglu", layers),
                             ("cross_entropy", 1)):
        assert runtime.CALLS[f"{kernel}_fwd"] == per_pass, (kernel, runtime.CALLS)
        assert runtime.CALLS[f"{kernel}_bwd"] == per_pass, (kernel, runtime.CALLS)
    runtime.CALLS.clear()
    v1.generate(model, x[:, :3], 2)
    assert runtime.CALLS["decode_attention_fwd"] == layers  # one decode step
    assert model.__class__.__mro__[1] is v2.TinyLlama   # the rung below: fused projections
    assert hasattr(model.model.layers[0].self_attn, "qkv_proj")
    assert hasattr(model.model.layers[0].mlp, "gate_up_proj")
    info = v3.describe(model)
    assert info["triton_mode"] == runtime.MODE and info["kernel_launches"]


def test_training_trajectory_matches_v1():
    ref, model = pair(seed=3)
    assert_training_matches(ref, model, v3.causal_lm_loss, CONFIG.vocab_size, DEV)


@pytest.mark.parametrize("static", [False, True], ids=["KVCache", "StaticKVCache"])
def test_kv_cache_decode_equals_full_recompute(static):
    """A StaticKVCache hands attention its whole buffers: the kernels must read only the
    filled positions (the rest is poisoned)."""
    _, model = pair()
    x = ids(2, 12, seed=5)
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache(2, device=DEV, static=static)
        for buf in cache.k + cache.v:
            buf.fill_(1e4)
        steps = [model(x[:, :5], cache=cache)]          # prefill: flash attention into cache
        steps.append(model(x[:, 5:8], cache=cache))     # chunk after cached tokens
        steps += [model(x[:, i:i + 1], cache=cache) for i in range(8, 12)]  # decode kernel
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)


def test_greedy_generation_equals_v1():
    ref, model = pair(seed=1)
    prompt = ids(3, 4, seed=2)
    torch.testing.assert_close(v1.generate(model, prompt, 10), v1.generate(ref, prompt, 10))


def test_unsupported_head_dim_and_bad_ids_are_rejected():
    with pytest.raises(ValueError, match="head_dim 16..128"):
        v3.TinyLlama(v1.get_preset("chip16"))  # head_dim 8
    _, model = pair()
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 97\)"):
        model(torch.tensor([[0, 97]], device=DEV))


def test_cli_runs_v3_and_records_the_mode(tmp_path, capsys):
    out = tmp_path / "v3.json"
    rc = main(v3.SPEC, ["--preset", "tiny", "--mode", "prefill", "--steps", "1", "--warmup", "0",
                        "--seq-len", "8", "--batch-size", "1", "--no-count", "--json", str(out)])
    assert rc == 0 and "v3 tiny prefill" in capsys.readouterr().out
    import json
    extra = json.loads(out.read_text())["extra"]
    assert extra["triton_mode"] == runtime.MODE
    assert extra["kernel_launches"]["flash_attention_fwd"] > 0


@pytest.mark.gpu
def test_bf16_autocast_training_step_close_to_v1_gpu():
    config = v1.get_preset("small")
    ref, model = pair(config)
    x = torch.randint(0, config.vocab_size, (4, 256), device=DEV)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = v3.causal_lm_loss(model, x)
        loss_ref = v1.causal_lm_loss(ref(x), x)
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(loss, loss_ref, rtol=2e-2, atol=2e-2)
    ref_params = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        cos = torch.nn.functional.cosine_similarity(p.grad.flatten().float(),
                                                    ref_params[name].grad.flatten().float(), dim=0)
        assert cos > 0.99, (name, float(cos))
