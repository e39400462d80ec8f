"""Per-unit checks: RTL == golden bit-exact on random and edge inputs, for every op."""
from __future__ import annotations

import numpy as np
import pytest

from hw_offload.driver import Accelerator
from hw_offload.isa import (COLSCALE_A, COLSCALE_B, GEMM_ACCUMULATE, GEMM_B_FROM_A,
                            GEMM_TRANSPOSE_B, OP_GEMM, OP_REQ, OP_RESADD, OP_RMS, OP_ROPE, OP_SMAX,
                            OP_SWIGLU, Insn)
from hw_offload.testing import MEM_A, MEM_ACC, MEM_W, Staging, seeds

pytestmark = pytest.mark.rtl
N = 16


@pytest.fixture(scope="module")
def rtl():
    with Accelerator("test") as acc:
        yield acc


def assert_same(got: dict, want: dict) -> None:
    for name in want:
        mism = np.flatnonzero(got[name] != want[name])
        assert mism.size == 0, (f"{name}: {mism.size} bytes differ, first at byte {mism[0]}: "
                                f"rtl={got[name][mism[0]]} golden={want[name][mism[0]]}")


def rand8(rng, shape, edge=False):
    """int8; with edge=True, half the values are -128/127/0/+-1."""
    x = rng.integers(-128, 128, shape, dtype=np.int64)
    if edge:
        pick = rng.random(shape) < 0.5
        x[pick] = rng.choice([-128, 127, 0, 1, -1], size=int(pick.sum()))
    return x.astype(np.int8)


@pytest.mark.parametrize("seed", seeds(4))
def test_gemm_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    m, kb, nb = int(rng.integers(1, 40)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    st = Staging()
    st.load(MEM_A, rand8(rng, (m * kb, N), edge=seed == 0), 0)
    st.load(MEM_W, rand8(rng, (kb * nb * N, N), edge=seed == 0), 0)
    # accumulate onto random int32 near the wrap-around limit to cover int32 overflow
    st.load(MEM_ACC, rng.integers(2**31 - 2**16, 2**31, (m * nb, N), dtype=np.int64).astype(np.int32), 0)
    st.ops.append(Insn(OP_GEMM, flags=GEMM_ACCUMULATE, rows=m, blocks=kb, aux=nb, dst=0, src0=0, src1=0))
    st.store("c", MEM_ACC, 0, m * nb)
    got, want, counters = st.run_both(rtl)
    assert_same(got, want)
    assert counters.array_busy > 0


@pytest.mark.parametrize("seed", seeds(3))
def test_gemm_b_from_activations_transposed(rtl, seed):
    """Q.K^T form: B read from the activation SRAM, transposed into the array."""
    rng = np.random.default_rng(seed)
    m, kb, nb = 32, int(rng.integers(1, 3)), 2
    st = Staging()
    st.load(MEM_A, rand8(rng, (m * kb, N)), 0)
    st.load(MEM_A, rand8(rng, (kb * nb * N, N)), 200)
    st.ops.append(Insn(OP_GEMM, flags=GEMM_B_FROM_A | GEMM_TRANSPOSE_B, rows=m, blocks=kb, aux=nb,
                       dst=0, src0=0, src1=200))
    st.store("c", MEM_ACC, 0, m * nb)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


def test_gemm_equals_numpy_matmul(rtl):
    """Independent of golden.py: the RTL's product equals numpy's."""
    rng = np.random.default_rng(7)
    m, k, n = 24, 32, 48
    a, b = rand8(rng, (m, k)), rand8(rng, (k, n))
    st = Staging()
    st.load(MEM_A, a.reshape(m, k // N, N).transpose(1, 0, 2).reshape(-1, N), 0)
    st.load(MEM_W, b.reshape(k, n // N, N).transpose(1, 0, 2).reshape(-1, N), 0)
    st.ops.append(Insn(OP_GEMM, rows=m, blocks=k // N, aux=n // N, dst=0, src0=0, src1=0))
    st.store("c", MEM_ACC, 0, m * n // N)
    got, _ = st.run(rtl)
    c = got["c"].view(np.int32).reshape(n // N, m, N).transpose(1, 0, 2).reshape(m, n)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def _acc_rows(rng, rows, scale):
    return rng.integers(-scale, scale, (rows, N), dtype=np.int64).astype(np.int32)


@pytest.mark.parametrize("seed", seeds(4))
def test_requant_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 20)), int(rng.integers(1, 3))
    st = Staging()
    acc = _acc_rows(rng, rows * blocks, 2**31)
    acc[0, :4] = [2**31 - 1, -2**31, 0, -1]           # extremes
    st.load(MEM_ACC, acc, 0)
    # shift 0 (no rounding), a saturating multiplier, and a rounding-heavy one
    for i, (m, s) in enumerate([(1, 0), (65535, 20), (int(rng.integers(1, 65536)), int(rng.integers(1, 40))),
                                (3, 1)]):
        st.ops.append(Insn(OP_REQ, rows=rows, blocks=blocks, dst=i * 100, src0=0, mult0=m, shift0=s))
        st.store(f"y{i}", MEM_A, i * 100, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


@pytest.mark.parametrize("seed", seeds(3))
def test_rmsnorm_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 12)), int(rng.integers(1, 4))
    st = Staging()
    x = rand8(rng, (rows * blocks, N), edge=seed == 0)
    x[:blocks] = 0 if seed == 1 else x[:blocks]     # an all-zero row: rms clamps to 1
    st.load(MEM_A, x, 0)
    st.load(MEM_W, rand8(rng, (blocks, N)), 0)
    st.ops.append(Insn(OP_RMS, rows=rows, blocks=blocks, dst=300, src0=0, src1=0,
                       mult0=int(rng.integers(2**14, 2**16)), shift0=int(rng.integers(20, 34))))
    st.store("y", MEM_A, 300, rows * blocks)
    got, want, counters = st.run_both(rtl)
    assert_same(got, want)
    assert counters.vector_busy > 0


@pytest.mark.parametrize("seed", seeds(3))
@pytest.mark.parametrize("head_dim,bph", [(8, 1), (16, 1), (16, 2)])
def test_rope_matches_golden(rtl, seed, head_dim, bph):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 20)), 2 * bph
    st = Staging()
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**20), 0)
    tr = (2 * head_dim + N - 1) // N
    table = rng.integers(-16384, 16385, (rows * bph * tr * N // 2,), dtype=np.int64).astype(np.int16)
    st.load(MEM_W, table.view(np.int8).reshape(-1, N), 0)
    st.ops.append(Insn(OP_ROPE, rows=rows, blocks=blocks, aux=head_dim, dst=0, src0=0, src1=0, src2=bph,
                       mult0=int(rng.integers(1, 2**16)), shift0=int(rng.integers(24, 34))))
    st.store("y", MEM_A, 0, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


@pytest.mark.parametrize("seed", seeds(4))
def test_softmax_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 40)), int(rng.integers(1, 3))
    q_off = int(rng.integers(0, 8))
    st = Staging()
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**int(rng.integers(8, 31))), 0)
    st.ops.append(Insn(OP_SMAX, rows=rows, blocks=blocks, dst=0, src0=0, src2=q_off,
                       mult0=int(rng.integers(1, 2**16)), shift0=int(rng.integers(8, 30))))
    st.store("p", MEM_A, 0, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


@pytest.mark.parametrize("seed", seeds(4))
def test_swiglu_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 20)), int(rng.integers(1, 3))
    st = Staging()
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**20), 0)           # gate
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**20), 500)         # up
    st.ops.append(Insn(OP_SWIGLU, rows=rows, blocks=blocks, dst=0, src0=0, src1=500,
                       mult0=int(rng.integers(1, 2**16)), shift0=int(rng.integers(10, 30)),
                       mult1=int(rng.integers(1, 2**16)), shift1=int(rng.integers(20, 40))))
    st.store("y", MEM_A, 0, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


@pytest.mark.parametrize("seed", seeds(4))
def test_resadd_matches_golden(rtl, seed):
    rng = np.random.default_rng(seed)
    rows, blocks = int(rng.integers(1, 20)), int(rng.integers(1, 3))
    st = Staging()
    st.load(MEM_A, rand8(rng, (rows * blocks, N), edge=True), 0)
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**24), 0)
    st.ops.append(Insn(OP_RESADD, rows=rows, blocks=blocks, dst=100, src0=0, src1=0,
                       mult0=int(rng.integers(1, 2**16)), mult1=int(rng.integers(1, 2**16)),
                       shift0=int(rng.integers(10, 32)), shift1=int(rng.integers(0, 20))))
    st.store("y", MEM_A, 100, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


# ---------------- per-column scaling of accumulator operands (per-channel weights) ----------------

def _colscale_table(rng, blocks, edge=False):
    """uint16 multipliers, one per column, as the (2*blocks, N) int8 rows of a W-SRAM table."""
    m = rng.integers(0, 2**16, blocks * N, dtype=np.int64)
    if edge:
        m[:4] = [0, 1, 2**15, 2**16 - 1]
    return m.astype(np.uint16).view(np.int8).reshape(2 * blocks, N), m


@pytest.mark.parametrize("seed", seeds(3))
@pytest.mark.parametrize("op", ["REQ", "ROPE", "SWIGLU", "RESADD"])
def test_column_scaled_ops_match_golden(rtl, seed, op):
    rng = np.random.default_rng(seed)
    rows, bph = int(rng.integers(1, 19)), 2 if op == "ROPE" else 1
    blocks = 2 * bph if op == "ROPE" else int(rng.integers(1, 4))
    st = Staging()
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**28), 0)
    st.load(MEM_ACC, _acc_rows(rng, rows * blocks, 2**24), 1000)
    st.load(MEM_A, rand8(rng, (rows * blocks, N), edge=True), 0)
    cs0, cs1 = 4000, 5003          # odd, unaligned table rows on purpose
    st.load(MEM_W, _colscale_table(rng, blocks, edge=seed == 0)[0], cs0)
    st.load(MEM_W, _colscale_table(rng, blocks)[0], cs1)
    m0, m1 = int(rng.integers(1, 2**16)), int(rng.integers(1, 2**16))
    if op == "REQ":
        insn = Insn(OP_REQ, flags=COLSCALE_A, rows=rows, blocks=blocks, dst=300, src0=0, cs0=cs0,
                    mult0=m0, shift0=int(rng.integers(16, 40)))
    elif op == "ROPE":
        table = rng.integers(-16384, 16385, (rows * bph * 2 * N // 2,), dtype=np.int64)
        st.load(MEM_W, table.astype(np.int16).view(np.int8).reshape(-1, N), 0)
        insn = Insn(OP_ROPE, flags=COLSCALE_A, rows=rows, blocks=blocks, aux=16, dst=300, src0=0,
                    src1=0, src2=bph, cs0=cs0, mult0=m0, shift0=int(rng.integers(30, 44)))
    elif op == "SWIGLU":
        insn = Insn(OP_SWIGLU, flags=COLSCALE_A | COLSCALE_B, rows=rows, blocks=blocks, dst=300,
                    src0=0, src1=1000, cs0=cs0, cs1=cs1, mult0=m0, shift0=int(rng.integers(16, 30)),
                    mult1=m1, shift1=int(rng.integers(20, 40)))
    else:
        insn = Insn(OP_RESADD, flags=COLSCALE_A, rows=rows, blocks=blocks, dst=300, src0=0,
                    src1=1000, cs0=cs0, mult0=m0, mult1=m1, shift0=int(rng.integers(10, 32)),
                    shift1=int(rng.integers(0, 20)))
    st.ops.append(insn)
    st.store("y", MEM_A, 300, rows * blocks)
    got, want, _ = st.run_both(rtl)
    assert_same(got, want)


def test_column_scaled_requant_equals_numpy(rtl):
    """Independent of golden.py: REQ with a column scale is round(round(x*m_c/2^15)*M/2^s)."""
    rng = np.random.default_rng(11)
    rows, blocks, mult, shift = 13, 3, 40000, 24
    acc = _acc_rows(rng, rows * blocks, 2**27)
    table, m = _colscale_table(rng, blocks, edge=True)
    st = Staging()
    st.load(MEM_ACC, acc, 0)
    st.load(MEM_W, table, 77)
    st.ops.append(Insn(OP_REQ, flags=COLSCALE_A, rows=rows, blocks=blocks, dst=0, src0=0, cs0=77,
                       mult0=mult, shift0=shift))
    st.store("y", MEM_A, 0, rows * blocks)
    got, _ = st.run(rtl)
    x = acc.astype(np.int64).reshape(blocks, rows, N).transpose(1, 0, 2).reshape(rows, -1)
    scaled = np.floor(x * m[None, :] / 2.0**15 + 0.5).astype(np.int64)   # exact below 2^53
    want = np.clip(np.floor(scaled * mult / 2.0**shift + 0.5), -128, 127).astype(np.int8)
    y = got["y"].view(np.int8).reshape(blocks, rows, N).transpose(1, 0, 2).reshape(rows, -1)
    np.testing.assert_array_equal(y, want)
