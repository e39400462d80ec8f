"""Ahead-of-time compiles (no GPU needed) of the launches that issue 12's compile run found
broken: each test records the model's real launch on CPU tensors and compiles it for the
GPU target that failed (``aot_launches``). The full sweep of every kernel, preset and target
is the compile gate's job; these hold the specific fixes.
"""
import pytest

from aot_launches import run_script

pytest.importorskip("triton.backends.amd.compiler")
pytest.importorskip("triton.backends.nvidia.compiler")

# A decode layer call at head_dim D (hidden 4 heads * D), batch 16, GQA 2:1.
_DECODE = r'''
import torch
from aot_launches import LIMIT_SHARED, compile_launch, record
from version4_ultra.kernels import decode_layer as dl

def decode_launches(dtype, cache_dtype, head_dim, family, persistent):
    dl.persistent_programs = lambda device, tiles: 132   # as on a GPU with 132 SMs
    hidden, inter, bsz = 4 * head_dim, 3 * head_dim, 16
    w = lambda *s: torch.zeros(s, dtype=dtype)
    weights = (torch.ones(hidden), w(hidden, hidden), w(hidden // 2, hidden),
               w(hidden // 2, hidden), w(hidden, hidden), torch.ones(hidden), w(inter, hidden),
               w(inter, hidden), w(hidden, inter))
    cache = torch.zeros(bsz, 2, 32, head_dim, dtype=cache_dtype)
    cos = torch.zeros(1, head_dim)
    return record(lambda: dl.decode_layer(torch.zeros(bsz, 1, hidden), weights, cache,
                                          cache.clone(), 5, cos, cos, 1e-6,
                                          persistent=persistent), family)
'''


def test_bf16_decode_layer_compiles_for_sm90_and_gfx942(tmp_path):
    """Was: 'Mismatched type for out between then block (pointer<fp32>) and else block
    (pointer<bf16>)'. Persistent (cooperative) and staged, bf16 weights and cache; the
    products must lower to tensor-core instructions."""
    out = run_script(_DECODE + r'''
for target, family in (("sm_90", "nvidia"), ("gfx942", "amd")):
    (persistent,) = decode_launches(torch.bfloat16, torch.bfloat16, 64, family, True)
    assert persistent[2]["launch_cooperative_grid"] is True
    staged_qkv = decode_launches(torch.bfloat16, torch.bfloat16, 64, family, False)[0]
    for name, launch in (("persistent", persistent), ("staged_qkv", staged_qkv)):
        r = compile_launch(launch, target)
        print(target, name, r["shared"] <= LIMIT_SHARED[target], r["tensor_cores"])
''', tmp_path)
    for target in ("sm_90", "gfx942"):
        for name in ("persistent", "staged_qkv"):
            assert f"{target} {name} True True" in out, out


def test_fp32_kernels_fit_mi300x_lds_at_head_dim_128(tmp_path):
    """Was: fp32 flash forward (80 KB), fp32 decode attention (68 KB) and the fp32 decode
    layer (72 KB) over gfx942's 64 KB. head_dim 80..128 all compile as BLOCK_D=128."""
    out = run_script(_DECODE + r'''
from version3_triton.kernels.decode_attention import decode_attention
from version3_triton.kernels.flash_attention import flash_attention
d = 128
q, kv = torch.zeros(1, 40, 4, d), torch.zeros(1, 40, 2, d)
launches = {"decode_layer": decode_launches(torch.float32, torch.float32, d, "amd", True)[0],
            "flash_fwd": record(lambda: flash_attention(q, kv, kv), "amd")[0],
            "decode_attention": record(lambda: decode_attention(
                torch.zeros(2, 4, d), torch.zeros(2, 2, 40, d), torch.zeros(2, 2, 40, d), 9),
                "amd")[0]}
for name, launch in launches.items():
    print(name, compile_launch(launch, "gfx942")["shared"])
''', tmp_path)
    shared = dict(line.split() for line in out.strip().splitlines())
    assert set(shared) == {"decode_layer", "flash_fwd", "decode_attention"}, out
    for name, size in shared.items():
        assert int(size) <= 65536, f"{name} needs {size} B of LDS on gfx942 (64 KB)"


@pytest.mark.slow
@pytest.mark.parametrize("head_dim", [64, 80, 96, 128])
def test_every_attention_and_decode_kernel_fits_mi300x_lds(tmp_path, head_dim):
    """The sweep: forward, backward and decode kernels, fp32 and bf16, head_dim 64..128."""
    out = run_script(_DECODE + rf'''
from version3_triton.kernels.decode_attention import decode_attention
from version3_triton.kernels.flash_attention import flash_attention
d = {head_dim}
for dt in (torch.float32, torch.bfloat16):
    q = torch.zeros(1, 40, 4, d, dtype=dt, requires_grad=True)
    kv = torch.zeros(1, 40, 2, d, dtype=dt, requires_grad=True)
    def train():
        flash_attention(q, kv, kv).sum().backward()
    launches = record(train, "amd")
    launches += record(lambda: decode_attention(torch.zeros(2, 4, d, dtype=dt),
        torch.zeros(2, 2, 40, d, dtype=dt), torch.zeros(2, 2, 40, d, dtype=dt), 9), "amd")
    launches += decode_launches(dt, dt, d, "amd", True)
    for launch in launches:
        print(launch[0].__name__, dt, compile_launch(launch, "gfx942")["shared"])
''', tmp_path, timeout=900)
    rows = [line.split() for line in out.strip().splitlines()]
    assert len(rows) >= 10, out
    for name, dtype, size in rows:
        assert int(size) <= 65536, f"{name} {dtype} d={head_dim}: {size} B of LDS"
