"""The v4 decode layer kernel (staged path under the interpreter) vs version 1's layer.

The reference is version 1's ``DecoderLayer`` writing into version 1's ``KVCache``: the
kernel must return the same hidden state *and* leave the same keys/values in the cache.
"""
import pytest
import torch

import version1_baseline as v1
from version1_baseline.model import DecoderLayer, RotaryEmbedding
from version3_triton import runtime
from version4_ultra.kernels import decode_layer as dl

DEV = runtime.DEVICE


def setup(bsz, hidden=64, heads=4, kv_heads=2, inter=88, max_seq=24, pos=9, seed=0):
    config = v1.TinyLlamaConfig(vocab_size=11, hidden_size=hidden, num_layers=1,
                                num_heads=heads, num_kv_heads=kv_heads,
                                intermediate_size=inter, max_seq_len=max_seq)
    torch.manual_seed(seed)
    layer = DecoderLayer(config).to(DEV)
    for p in layer.parameters():  # away from the init so every weight matters
        p.data.normal_(0, 0.2 if p.dim() > 1 else 1.0)
    cache = v1.KVCache(config, bsz, device=DEV)
    cache.k[0].normal_()
    cache.v[0].normal_()
    cache.advance(pos)
    x = torch.randn(bsz, 1, hidden, device=DEV)
    cos, sin = RotaryEmbedding(config.head_dim).to(DEV)(torch.tensor([pos], device=DEV))
    return layer, cache, x, cos, sin


def weights(layer):
    a, m = layer.self_attn, layer.mlp
    return (layer.input_layernorm.weight, a.q_proj.weight, a.k_proj.weight, a.v_proj.weight,
            a.o_proj.weight, layer.post_attention_layernorm.weight, m.gate_proj.weight,
            m.up_proj.weight, m.down_proj.weight)


@pytest.mark.parametrize("bsz,heads,kv_heads,inter,pos", [
    (1, 4, 2, 88, 0),     # first position: attention over the one new key
    (3, 4, 2, 88, 9),     # odd batch, GQA 2:1, odd intermediate size
    (8, 4, 1, 40, 23),    # 4 query heads per kv head, last cache slot
    (16, 4, 2, 40, 6),    # the largest batch (the medium preset decodes at 16)
    (2, 2, 2, 72, 17),    # no GQA (MHA)
])
def test_staged_decode_matches_v1_layer_and_cache(bsz, heads, kv_heads, inter, pos):
    layer, cache, x, cos, sin = setup(bsz, heads=heads, kv_heads=kv_heads, inter=inter, pos=pos)
    k_cache, v_cache = cache.k[0].clone(), cache.v[0].clone()
    k_plain, v_plain = cache.k[0].clone(), cache.v[0].clone()
    runtime.CALLS.clear()
    with torch.no_grad(), runtime.poison_outputs():
        out = dl.decode_layer(x, weights(layer), k_cache, v_cache, pos, cos, sin,
                              layer.input_layernorm.eps)
        plain = dl.reference(x, weights(layer), k_plain, v_plain, pos, cos, sin,
                             layer.input_layernorm.eps)
        ref = layer(x, cos, sin, cache, 0)
    # The kernel file's plain reference (the bench's baseline) is itself version 1's layer.
    torch.testing.assert_close(plain, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k_plain, cache.k[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v_plain, cache.v[0], rtol=1e-5, atol=1e-5)
    assert runtime.CALLS["decode_layer_staged"] == dl.N_STAGES  # one launch per stage
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # The append: position pos now holds the new K/V; every other position is untouched.
    torch.testing.assert_close(k_cache, cache.k[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v_cache, cache.v[0], rtol=1e-5, atol=1e-5)


def test_attention_uses_the_cache_not_only_the_new_token():
    # Changing an old cached value must change the output: catches a kernel that attends
    # only to the key it just wrote, or reads the cache at the wrong stride.
    layer, cache, x, cos, sin = setup(2, pos=5)
    with torch.no_grad():
        a = dl.decode_layer(x, weights(layer), cache.k[0].clone(), cache.v[0].clone(), 5, cos,
                            sin, 1e-6)
        v_changed = cache.v[0].clone()
        v_changed[:, :, 2] += 1.0
        b = dl.decode_layer(x, weights(layer), cache.k[0].clone(), v_changed, 5, cos, sin, 1e-6)
    assert not torch.allclose(a, b)


def test_persistent_variant_refuses_where_programs_run_one_after_another():
    if not runtime.INTERPRET:
        pytest.skip("compiled mode: the persistent kernel can run")
    layer, cache, x, cos, sin = setup(1)
    assert dl.persistent_programs(DEV, 100) is None
    with torch.no_grad(), pytest.raises(ValueError, match="persistent decode kernel needs a GPU"):
        dl.decode_layer(x, weights(layer), cache.k[0], cache.v[0], 9, cos, sin, 1e-6,
                        persistent=True)


def test_unsupported_inputs_are_refused_not_miscomputed():
    layer, cache, x, cos, sin = setup(17)
    assert "batch 1..16" in dl.unsupported_reason(x, weights(layer), cache.k[0], 9)
    with torch.no_grad(), pytest.raises(ValueError, match="batch 1..16"):
        dl.decode_layer(x, weights(layer), cache.k[0], cache.v[0], 9, cos, sin, 1e-6)
    layer, cache, x, cos, sin = setup(2)
    with pytest.raises(RuntimeError, match="no backward"):
        dl.decode_layer(x, weights(layer), cache.k[0], cache.v[0], 9, cos, sin, 1e-6)
    with torch.no_grad(), pytest.raises(ValueError, match="outside the cache"):
        dl.decode_layer(x, weights(layer), cache.k[0], cache.v[0], 24, cos, sin, 1e-6)
    with torch.no_grad(), pytest.raises(ValueError, match="9 tensors"):
        dl.decode_layer(x, weights(layer)[:8], cache.k[0], cache.v[0], 9, cos, sin, 1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("bsz", [1, 4, 8])
def test_persistent_equals_staged_gpu(bsz):
    layer, cache, x, cos, sin = setup(bsz, hidden=256, heads=8, kv_heads=4, inter=704,
                                      max_seq=128, pos=100)
    outs, caches = [], []
    with torch.no_grad():
        for persistent in (True, False):
            k, v = cache.k[0].clone(), cache.v[0].clone()
            outs.append(dl.decode_layer(x, weights(layer), k, v, 100, cos, sin, 1e-6,
                                        persistent=persistent))
            caches.append((k, v))
        ref = layer(x, cos, sin, cache, 0)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(caches[0][0], caches[1][0], rtol=0, atol=0)
    torch.testing.assert_close(outs[0], ref, rtol=1e-3, atol=1e-3)  # fp32 without TF32 drift


@pytest.mark.gpu
def test_bf16_weights_close_to_fp32_gpu():
    layer, cache, x, cos, sin = setup(4, hidden=256, heads=8, kv_heads=4, inter=704,
                                      max_seq=128, pos=50)
    with torch.no_grad():
        got = dl.decode_layer(x.bfloat16(), [w.bfloat16() for w in weights(layer)],
                              cache.k[0].clone().bfloat16(), cache.v[0].clone().bfloat16(),
                              50, cos, sin, 1e-6)
        ref = layer(x, cos, sin, cache, 0)
    torch.testing.assert_close(got.float(), ref, rtol=5e-2, atol=5e-2)


_COMPILE = r'''
import os, re, sys
os.environ["TRITON_INTERPRET"] = "0"
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from version4_ultra.kernels import decode_layer as dl
sig = {n: "*fp32" for n in ["X", "NW1", "WQ", "WK", "WV", "COS", "SIN", "KC", "VC", "WO", "NW2",
                            "WG", "WU", "WD", "QS", "ATT", "HS", "ACT", "OUT"]}
sig.update({n: "i32" for n in ["n_rows", "hidden", "inter", "n_q", "n_kv", "head_dim", "pos"]})
sig.update(eps="fp32", sm_scale="fp32")
sig.update({n: "i32" for n in ["skb", "skh", "sks", "svb", "svh", "svs"]})
const = dict(IEEE=True, ATT_IEEE=True, BLOCK_B=16, BLOCK_K=128, BLOCK_H=32, BLOCK_N=16,
             BLOCK_G=16, BLOCK_T=64, BLOCK_D=64)
sig.update({k: "constexpr" for k in const})
sig.update(COUNTER="*i32", STATUS="*i32", max_spins="i32", n_programs="i32", tiles_qkv="i32", tiles_att="i32", tiles_h="i32",
           tiles_i="i32")
src = ASTSource(dl._decode_persistent_kernel, sig,
                constexprs={(list(sig).index(k),): v for k, v in const.items()})
ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4}).asm["ptx"]
print("arrive", len(re.findall(r"(red|atom)\.global\.gpu\.release\.add", ptx)))
print("spin", len(re.findall(r"ld\.global\.gpu\.acquire", ptx)))
'''


def test_persistent_kernel_compiles_for_a_gpu_with_its_grid_barrier(tmp_path):
    """No GPU is needed to *compile*: build the one-launch kernel for sm_90 (PTX + ptxas) and
    check that the four grid barriers survived as a release arrive and an acquire spin."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.backends.nvidia import compiler  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"triton's NVIDIA backend is not installed: {exc}")
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # Each bounded spin polls twice in the code: once before the loop, once inside it.
    assert "arrive 4" in done.stdout and "spin 8" in done.stdout, done.stdout


def _persistent_args(bsz=2, pos=9):
    """decode_layer's launch arguments, recorded instead of launched (staged meta)."""
    layer, cache, x, cos, sin = setup(bsz, pos=pos)
    seen = {}

    def capture(args, meta, tiles, programs, status, max_spins=dl.MAX_SPINS):
        seen.update(args=args, meta=meta, tiles=tiles)
    original, original_programs = dl.launch_persistent, dl.persistent_programs
    dl.launch_persistent, dl.persistent_programs = capture, lambda device, tiles: 2
    try:
        with torch.no_grad():
            dl.decode_layer(x, weights(layer), cache.k[0].clone(), cache.v[0].clone(), pos,
                            cos, sin, 1e-6, barrier_status=dl.new_barrier_status(DEV))
    finally:
        dl.launch_persistent, dl.persistent_programs = original, original_programs
    return seen


def test_barrier_spin_is_bounded_and_the_host_raises():
    """In the interpreter programs run one after another: program 0 waits at the first
    barrier for program 1, which has not started. The bounded spin gives up, sets the
    status flag, and the host raises instead of hanging (an unbounded spin never returns)."""
    if not runtime.INTERPRET:
        pytest.skip("needs programs that run one after another (the interpreter)")
    seen = _persistent_args()
    status = dl.new_barrier_status(DEV)
    with torch.no_grad():
        dl.launch_persistent(seen["args"], seen["meta"], seen["tiles"], 2, status, max_spins=50)
    with pytest.raises(RuntimeError, match="timed out at a grid barrier"):
        dl.check_barrier_status(status)


def test_each_persistent_launch_gets_its_own_arrival_counter():
    counters = []
    original = dl._decode_persistent_kernel
    dl._decode_persistent_kernel = {(2,): lambda *a, COUNTER, **k: counters.append(COUNTER)}
    try:
        seen = _persistent_args()
        status = dl.new_barrier_status(DEV)
        for _ in range(2):
            dl.launch_persistent(seen["args"], seen["meta"], seen["tiles"], 2, status)
    finally:
        dl._decode_persistent_kernel = original
    assert len(counters) == 2 and counters[0].data_ptr() != counters[1].data_ptr()
    assert all(int(c) == 0 for c in counters)  # zeroed: every launch starts counting at 0
