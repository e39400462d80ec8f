"""One whole decoder layer for one new token per sequence (batch 1..16): the decode megakernel.

Five stages, each a loop over independent tiles; a stage needs all of the previous one::

    A  qkv:        RMSNorm -> Q/K/V GEMV -> RoPE -> Q to scratch, K/V appended to the cache
                   (tile = one head of Q, K or V; the norm is a prologue as in norm_qkv_rope)
    B  attention:  the new query against positions [0, pos] of the cache
                   (tile = one (batch, kv head); all query heads of the group at once)
    C  o_proj:     h = x + attn @ Wo^T                      (tile = BLOCK_N columns of h)
    D  gate_up:    act = silu(norm(h) @ Wg^T) * (norm(h) @ Wu^T)  (tile = BLOCK_N of act)
    E  down:       out = h + act @ Wd^T                     (tile = BLOCK_N columns of out)

Two ways to run the same stage functions:

* **persistent** (GPU only): one launch per layer. P programs, P <= the number of SMs,
  launched as a cooperative grid (``launch_cooperative_grid``: the driver refuses a grid
  whose programs cannot all be resident at once); each walks the tiles of a stage with
  stride P, then waits at a grid barrier (an atomic counter: arrive, then spin until all P
  arrived) before the next stage. Data written by other programs is read with ``.cg`` loads
  (L2, not the non-coherent L1). The counter is a fresh zeroed tensor of each call (never
  shared by two streams). The spin is bounded (``MAX_SPINS``): a program that gives up
  sets a status flag, and the host raises RuntimeError instead of hanging.
* **staged** (the interpreter, and the fallback): the five stages as five consecutive
  launches; a launch boundary is the barrier. Under ``TRITON_INTERPRET=1`` programs run one
  after another, so a spin barrier would wait forever for a program that never started:
  the persistent variant is never used there.

Batch rows are padded to 16 (``tl.dot`` needs M >= 16): free, decode is bound by reading
the weights, and each weight tile is read by exactly one program per stage.

Arithmetic: fp32 accumulation; the dot operands in the weights' dtype (fp32 weights: IEEE
fp32, so fp32 decode matches version 1). Scratch (q, attention output, h, act) is fp32.
Inference only: there is no backward (the model uses it only under ``torch.no_grad``).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from version3_triton import block_sizes, runtime
from version3_triton.kernels.dot import dot
from version3_triton.kernels.flash_attention import MAX_HEAD_DIM, MIN_HEAD_DIM
from version3_triton.kernels.softmax_base2 import LOG2E

from version3_triton.kernels import decode_attention as v3_decode_attention

from . import linear_residual as v4_linear_residual
from . import norm_gate_up_swiglu as v4_norm_gate_up_swiglu
from . import norm_qkv_rope as v4_norm_qkv_rope
from .norm_prologue import normed_x_tile, qkv_weight_base

BLOCK_B = 16
MAX_BATCH = BLOCK_B  # every batch row lives in the one BLOCK_B-row tile of each stage
NORM_WEIGHTS = (0, 5)  # indices of the two RMSNorm gains in ``weights`` (read as fp32)
N_STAGES = 5


@triton.jit
def _stage_qkv(tile, X, NW, WQ, WK, WV, COS, SIN, QS, KC, VC, n_rows, hidden, n_q, n_kv,
               head_dim, half, pos, eps, skb, skh, sks, svb, svh, svs,
               IEEE: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr,
               BLOCK_H: tl.constexpr):
    """X: (B, hidden); QS: (B, n_q, D) fp32; KC/VC: strided (B, n_kv, T, D) caches."""
    head = tile
    offs_b = tl.arange(0, BLOCK_B)
    offs_h = tl.arange(0, BLOCK_H)
    offs_k0 = tl.arange(0, BLOCK_K)
    b_ok = offs_b < n_rows
    h_ok = offs_h < half
    w_base = qkv_weight_base(WQ, WK, WV, head, n_q, n_kv, head_dim, hidden)
    acc1 = tl.zeros([BLOCK_B, BLOCK_H], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK_B, BLOCK_H], dtype=tl.float32)
    sum_sq = tl.zeros([BLOCK_B], dtype=tl.float32)
    for k0 in range(0, hidden, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < hidden
        xg, tile_sq = normed_x_tile(X, NW, offs_b, b_ok, offs_k, k_ok, hidden)
        sum_sq += tile_sq
        w_mask = k_ok[:, None] & h_ok[None, :]
        w1 = tl.load(w_base + offs_h[None, :] * hidden + offs_k[:, None], mask=w_mask, other=0.0)
        w2 = tl.load(w_base + (half + offs_h[None, :]) * hidden + offs_k[:, None], mask=w_mask,
                     other=0.0)
        xn = xg.to(w1.dtype)
        acc1 += dot(xn, w1, IEEE)
        acc2 += dot(xn, w2, IEEE)
    rstd = 1.0 / tl.sqrt(sum_sq / hidden + eps)
    a = acc1 * rstd[:, None]
    b = acc2 * rstd[:, None]
    mask = b_ok[:, None] & h_ok[None, :]
    if head < n_q + n_kv:
        cos = tl.load(COS + offs_h, mask=h_ok, other=0.0).to(tl.float32)[None, :]
        sin = tl.load(SIN + offs_h, mask=h_ok, other=0.0).to(tl.float32)[None, :]
        a, b = a * cos - b * sin, b * cos + a * sin
    # One pointer name per branch: Triton merges a name assigned in both branches of an if,
    # and QS (fp32) and the caches (bf16/fp16) are pointers of different types.
    if head < n_q:
        q_out = QS + (offs_b[:, None] * n_q + head) * head_dim + offs_h[None, :]
        tl.store(q_out, a, mask=mask)
        tl.store(q_out + half, b, mask=mask)
    elif head < n_q + n_kv:
        k_out = KC + offs_b[:, None].to(tl.int64) * skb + (head - n_q) * skh + pos * sks \
            + offs_h[None, :]
        tl.store(k_out, a.to(KC.dtype.element_ty), mask=mask)
        tl.store(k_out + half, b.to(KC.dtype.element_ty), mask=mask)
    else:
        v_out = VC + offs_b[:, None].to(tl.int64) * svb + (head - n_q - n_kv) * svh \
            + pos * svs + offs_h[None, :]
        tl.store(v_out, a.to(VC.dtype.element_ty), mask=mask)
        tl.store(v_out + half, b.to(VC.dtype.element_ty), mask=mask)


@triton.jit
def _stage_attention(tile, QS, KC, VC, ATT, n_q, n_kv, groups, head_dim, length, sm_scale,
                     skb, skh, sks, svb, svh, svs, IEEE: tl.constexpr, BLOCK_G: tl.constexpr,
                     BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """The online-softmax loop of version 3's decode_attention, over keys [0, length).
    QS, ATT: (B, n_q, D) fp32."""
    b = tile // n_kv
    kvh = tile % n_kv
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    g_ok = offs_g < groups
    d_ok = offs_d < head_dim
    q_offs = ((b * n_q + kvh * groups + offs_g[:, None]) * head_dim + offs_d[None, :])
    q = tl.load(QS + q_offs, mask=g_ok[:, None] & d_ok[None, :], other=0.0,
                cache_modifier=".cg").to(KC.dtype.element_ty)
    k_base = KC + b.to(tl.int64) * skb + kvh * skh
    v_base = VC + b.to(tl.int64) * svb + kvh * svh
    qk_scale = sm_scale * LOG2E
    m_i = tl.full([BLOCK_G], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)
    for start_n in range(0, length, BLOCK_N):
        offs_n = start_n + offs_n0
        n_ok = offs_n < length
        k_t = tl.load(k_base + offs_n[None, :] * sks + offs_d[:, None],
                      mask=n_ok[None, :] & d_ok[:, None], other=0.0, cache_modifier=".cg")
        s = dot(q, k_t, IEEE) * qk_scale
        s = tl.where(n_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + offs_n[:, None] * svs + offs_d[None, :],
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0, cache_modifier=".cg")
        acc = acc * alpha[:, None] + dot(p.to(v.dtype), v, IEEE)
        m_i = m_new
    tl.store(ATT + q_offs, acc / l_i[:, None], mask=g_ok[:, None] & d_ok[None, :])


@triton.jit
def _stage_linear_residual(tile, A, W, R, OUT, n_rows, N, K, IEEE: tl.constexpr,
                           BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """OUT[:, tile cols] = R + A @ W^T; A: (B, K) fp32 scratch, W: (N, K), R/OUT: (B, N)."""
    offs_b = tl.arange(0, BLOCK_B)
    offs_n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k0 = tl.arange(0, BLOCK_K)
    b_ok = offs_b < n_rows
    n_ok = offs_n < N
    acc = tl.zeros([BLOCK_B, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < K
        a = tl.load(A + offs_b[:, None] * K + offs_k[None, :], mask=b_ok[:, None] & k_ok[None, :],
                    other=0.0, cache_modifier=".cg")
        w = tl.load(W + offs_n[None, :].to(tl.int64) * K + offs_k[:, None],
                    mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc += dot(a.to(w.dtype), w, IEEE)
    mask = b_ok[:, None] & n_ok[None, :]
    offs = offs_b[:, None] * N + offs_n[None, :]
    r = tl.load(R + offs, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
    tl.store(OUT + offs, (r + acc).to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _stage_gate_up(tile, H, NW, WG, WU, ACT, n_rows, N, K, eps, IEEE: tl.constexpr,
                   BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """ACT[:, tile cols] = silu(norm(H) @ WG^T) * (norm(H) @ WU^T); H: (B, K) fp32."""
    offs_b = tl.arange(0, BLOCK_B)
    offs_n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k0 = tl.arange(0, BLOCK_K)
    b_ok = offs_b < n_rows
    n_ok = offs_n < N
    acc_g = tl.zeros([BLOCK_B, BLOCK_N], dtype=tl.float32)
    acc_u = tl.zeros([BLOCK_B, BLOCK_N], dtype=tl.float32)
    sum_sq = tl.zeros([BLOCK_B], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + offs_k0
        k_ok = offs_k < K
        h = tl.load(H + offs_b[:, None] * K + offs_k[None, :], mask=b_ok[:, None] & k_ok[None, :],
                    other=0.0, cache_modifier=".cg")
        sum_sq += tl.sum(h * h, axis=1)
        nw = tl.load(NW + offs_k, mask=k_ok, other=0.0).to(tl.float32)
        w_offs = offs_n[None, :].to(tl.int64) * K + offs_k[:, None]
        w_mask = k_ok[:, None] & n_ok[None, :]
        wg = tl.load(WG + w_offs, mask=w_mask, other=0.0)
        wu = tl.load(WU + w_offs, mask=w_mask, other=0.0)
        hn = (h * nw[None, :]).to(wg.dtype)
        acc_g += dot(hn, wg, IEEE)
        acc_u += dot(hn, wu, IEEE)
    rstd = 1.0 / tl.sqrt(sum_sq / K + eps)
    g = acc_g * rstd[:, None]
    u = acc_u * rstd[:, None]
    tl.store(ACT + offs_b[:, None] * N + offs_n[None, :], g * tl.sigmoid(g) * u,
             mask=b_ok[:, None] & n_ok[None, :])


@triton.jit
def _run_stage(STAGE: tl.constexpr, tile,
               X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD,
               QS, ATT, HS, ACT, OUT,
               n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
               skb, skh, sks, svb, svh, svs,
               IEEE: tl.constexpr, ATT_IEEE: tl.constexpr, BLOCK_B: tl.constexpr,
               BLOCK_K: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
               BLOCK_G: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    if STAGE == 0:
        _stage_qkv(tile, X, NW1, WQ, WK, WV, COS, SIN, QS, KC, VC, n_rows, hidden, n_q, n_kv,
                   head_dim, head_dim // 2, pos, eps, skb, skh, sks, svb, svh, svs,
                   IEEE, BLOCK_B, BLOCK_K, BLOCK_H)
    elif STAGE == 1:
        _stage_attention(tile, QS, KC, VC, ATT, n_q, n_kv, n_q // n_kv, head_dim, pos + 1,
                         sm_scale, skb, skh, sks, svb, svh, svs, ATT_IEEE, BLOCK_G, BLOCK_T,
                         BLOCK_D)
    elif STAGE == 2:
        _stage_linear_residual(tile, ATT, WO, X, HS, n_rows, hidden, n_q * head_dim, IEEE,
                               BLOCK_B, BLOCK_N, BLOCK_K)
    elif STAGE == 3:
        _stage_gate_up(tile, HS, NW2, WG, WU, ACT, n_rows, inter, hidden, eps, IEEE,
                       BLOCK_B, BLOCK_N, BLOCK_K)
    else:
        _stage_linear_residual(tile, ACT, WD, HS, OUT, n_rows, hidden, inter, IEEE,
                               BLOCK_B, BLOCK_N, BLOCK_K)


@triton.jit
def _decode_stage_kernel(X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD,
                         QS, ATT, HS, ACT, OUT,
                         n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
                         skb, skh, sks, svb, svh, svs,
                         IEEE: tl.constexpr, ATT_IEEE: tl.constexpr, BLOCK_B: tl.constexpr,
                         BLOCK_K: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_G: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                         STAGE: tl.constexpr):
    """Staged path: one launch runs one stage; program id = tile."""
    _run_stage(STAGE, tl.program_id(0), X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)


@triton.jit
def _grid_barrier(COUNTER, STATUS, target, max_spins):
    """Wait until ``target`` arrivals are counted, or ``max_spins`` polls have gone by.

    Valid only when all programs are resident (the cooperative launch makes the driver check
    that). A program that gives up sets ``STATUS`` to 1 and goes on: the host raises on it
    (``check_barrier_status``) instead of the GPU hanging forever.
    """
    tl.debug_barrier()  # every thread of this program has issued its stores
    tl.atomic_add(COUNTER, 1, sem="release", scope="gpu")
    arrived = tl.atomic_add(COUNTER, 0, sem="acquire", scope="gpu")
    spins = 0
    while (arrived < target) & (spins < max_spins):
        arrived = tl.atomic_add(COUNTER, 0, sem="acquire", scope="gpu")
        spins += 1
    if arrived < target:
        tl.atomic_max(STATUS, 1, sem="relaxed", scope="gpu")
    tl.debug_barrier()


@triton.jit
def _decode_persistent_kernel(X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD,
                         QS, ATT, HS, ACT, OUT,
                         n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
                         skb, skh, sks, svb, svh, svs,
                         IEEE: tl.constexpr, ATT_IEEE: tl.constexpr, BLOCK_B: tl.constexpr,
                         BLOCK_K: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_G: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                              COUNTER, STATUS, max_spins, n_programs, tiles_qkv, tiles_att,
                              tiles_h, tiles_i):
    """All five stages in one launch; a grid barrier between consecutive stages."""
    pid = tl.program_id(0)
    for tile in range(pid, tiles_qkv, n_programs):
        _run_stage(0, tile, X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)
    _grid_barrier(COUNTER, STATUS, n_programs, max_spins)
    for tile in range(pid, tiles_att, n_programs):
        _run_stage(1, tile, X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)
    _grid_barrier(COUNTER, STATUS, 2 * n_programs, max_spins)
    for tile in range(pid, tiles_h, n_programs):
        _run_stage(2, tile, X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)
    _grid_barrier(COUNTER, STATUS, 3 * n_programs, max_spins)
    for tile in range(pid, tiles_i, n_programs):
        _run_stage(3, tile, X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)
    _grid_barrier(COUNTER, STATUS, 4 * n_programs, max_spins)
    for tile in range(pid, tiles_h, n_programs):
        _run_stage(4, tile, X, NW1, WQ, WK, WV, COS, SIN, KC, VC, WO, NW2, WG, WU, WD, QS, ATT, HS, ACT, OUT,
        n_rows, hidden, inter, n_q, n_kv, head_dim, pos, eps, sm_scale,
        skb, skh, sks, svb, svh, svs, IEEE, ATT_IEEE, BLOCK_B, BLOCK_K, BLOCK_H, BLOCK_N,
        BLOCK_G, BLOCK_T, BLOCK_D)


def unsupported_reason(x: torch.Tensor, weights, k_cache: torch.Tensor, pos: int) -> str | None:
    """Why ``decode_layer`` cannot take these inputs, or None when it can.

    The model falls back to version 3's layer (with a one-time warning) on a reason.
    """
    bsz, seq, hidden = x.shape
    if seq != 1:
        return f"it decodes one token per sequence, got {seq}"
    if not 1 <= bsz <= MAX_BATCH:
        return f"it supports batch 1..{MAX_BATCH}, got {bsz}"
    matrices = [w for i, w in enumerate(weights) if i not in NORM_WEIGHTS]
    if len({w.dtype for w in matrices}) != 1 or matrices[0].dtype not in runtime.FLOAT_DTYPES:
        return "its projection weights must share one float dtype"
    if x.dtype not in runtime.FLOAT_DTYPES or k_cache.dtype not in runtime.FLOAT_DTYPES:
        return f"x ({x.dtype}) and the cache ({k_cache.dtype}) must be floating point"
    if not MIN_HEAD_DIM <= k_cache.shape[3] <= MAX_HEAD_DIM:
        return f"head_dim must be {MIN_HEAD_DIM}..{MAX_HEAD_DIM}, got {k_cache.shape[3]}"
    if not 0 <= pos < k_cache.shape[2]:
        return f"position {pos} is outside the cache of {k_cache.shape[2]} positions"
    return None


def persistent_programs(device: torch.device, tiles: int) -> int | None:
    """How many programs the one-launch variant uses here, or None where it must not run.

    Never in the interpreter (programs run one after another: a spin barrier would hang).
    On a GPU: at most one program per SM, so all of them are resident together.
    """
    if runtime.INTERPRET or device.type != "cuda":
        return None
    return max(1, min(tiles, torch.cuda.get_device_properties(device).multi_processor_count))


# Polls of the arrival counter before a barrier gives up. One poll is an L2 round trip
# (~1 us), so this is seconds: far beyond any stage, yet a hang ends with an error.
MAX_SPINS = 1 << 24


def new_barrier_status(device) -> torch.Tensor:
    """A (1,) int32 flag for persistent launches to report a barrier timeout into (0: none).
    One may serve several launches (a whole decode step) and be checked once at the end."""
    return torch.zeros(1, dtype=torch.int32, device=device)


def check_barrier_status(status: torch.Tensor) -> None:
    """Raise RuntimeError if a persistent launch reported a barrier timeout (a host sync)."""
    if int(status.item()):
        raise RuntimeError(
            "decode_layer's persistent kernel timed out at a grid barrier: its programs were "
            "not all resident at once (another kernel or process holding SMs?), so its output "
            "is invalid. Run the staged path (persistent=False / --decode-kernel staged).")


def launch_persistent(args, meta, tiles, programs: int, status: torch.Tensor,
                      max_spins: int = MAX_SPINS) -> None:
    """One cooperative launch of the five stages over ``programs`` programs.

    The arrival counter belongs to this call (a fresh zeroed tensor), so concurrent decode
    streams never share one. Barrier timeouts are reported into ``status``.
    """
    counter = torch.zeros(1, dtype=torch.int32, device=status.device)
    runtime.count("decode_layer")
    _decode_persistent_kernel[(programs,)](
        *args, COUNTER=counter, STATUS=status, max_spins=int(max_spins), n_programs=programs,
        tiles_qkv=tiles[0], tiles_att=tiles[1], tiles_h=tiles[2], tiles_i=tiles[3],
        launch_cooperative_grid=True, **meta)


def decode_layer(x: torch.Tensor, weights, k_cache: torch.Tensor, v_cache: torch.Tensor,
                 pos: int, cos: torch.Tensor, sin: torch.Tensor, eps: float,
                 persistent: bool | None = None,
                 barrier_status: torch.Tensor | None = None) -> torch.Tensor:
    """One decoder layer for one new token per sequence; appends its K/V to the cache.

    x: (B, 1, hidden) with 1 <= B <= 16; weights: (input_norm (hidden,), q (Hq*D, hidden),
    k, v (Hkv*D, hidden), o (hidden, Hq*D), post_norm (hidden,), gate, up (I, hidden),
    down (hidden, I)), the seven matrices in one dtype (the dot operands' dtype: bf16
    matrices run on tensor cores), the two norm gains in any float dtype (read as fp32); k_cache, v_cache: (B, Hkv, T, D) (any strides, unit last),
    positions [0, pos) valid, the new token's K/V are written at ``pos``; cos, sin: (1, D)
    for position ``pos``. Returns (B, 1, hidden) in x's dtype.

    ``persistent``: None picks the one-launch kernel wherever ``persistent_programs`` allows
    it, else the five-launch staged path; True demands it (ValueError where it cannot run);
    False forces the staged path. Raises ValueError where ``unsupported_reason`` has one.
    ``barrier_status``: a ``new_barrier_status`` flag the persistent launch reports a grid
    barrier timeout into, for the caller to check once per step; None: a flag of this call,
    checked right after the launch (RuntimeError on a timeout; costs a host sync).
    """
    x = runtime.check_tensor(x, "x", dim=3)
    weights = [runtime.check_tensor(w, f"weights[{i}]") for i, w in enumerate(weights)]
    k_cache = runtime.check_tensor(k_cache, "k_cache", dim=4, contiguous=False)
    v_cache = runtime.check_tensor(v_cache, "v_cache", dim=4, contiguous=False)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *weights)):
        raise RuntimeError("decode_layer has no backward; call it under torch.no_grad()")
    if len(weights) != 9:
        raise ValueError(f"weights must be the layer's 9 tensors, got {len(weights)}")
    reason = unsupported_reason(x, weights, k_cache, pos)
    if reason:
        raise ValueError(f"decode_layer cannot run this input: {reason}")
    nw1, wq, wk, wv, wo, nw2, wg, wu, wd = weights
    bsz, _, hidden = x.shape
    _, n_kv, _, d = k_cache.shape
    n_q, inter = wq.shape[0] // d, wg.shape[0]
    expected = {"input_norm": (nw1, (hidden,)), "q": (wq, (n_q * d, hidden)),
                "k": (wk, (n_kv * d, hidden)), "v": (wv, (n_kv * d, hidden)),
                "o": (wo, (hidden, n_q * d)), "post_norm": (nw2, (hidden,)),
                "gate": (wg, (inter, hidden)), "up": (wu, (inter, hidden)),
                "down": (wd, (hidden, inter))}
    for name, (w, shape) in expected.items():
        if tuple(w.shape) != shape:
            raise ValueError(f"{name} weight has shape {tuple(w.shape)}, expected {shape}")
    if v_cache.shape != k_cache.shape or k_cache.shape[0] != bsz or n_q % n_kv:
        raise ValueError(f"caches {tuple(k_cache.shape)} / {tuple(v_cache.shape)} do not fit "
                         f"batch {bsz} with {n_q} query heads")
    if k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        raise ValueError("the caches need a unit last stride")
    cos = runtime.check_tensor(cos, "cos", dim=2)
    sin = runtime.check_tensor(sin, "sin", dim=2)
    if cos.shape != (1, d) or sin.shape != (1, d):
        raise ValueError(f"cos/sin must be (1, {d}) for the one new position")
    x2d = x.reshape(bsz, hidden)
    dev = x.device
    qs = runtime.new_output((bsz, n_q, d), torch.float32, dev)
    att = runtime.new_output((bsz, n_q * d), torch.float32, dev)
    hs = runtime.new_output((bsz, hidden), torch.float32, dev)
    act = runtime.new_output((bsz, inter), torch.float32, dev)
    out = runtime.new_output((bsz, hidden), x.dtype, dev)
    # fp32 weights or cache: the IEEE (register-operand) tiles, smaller on every target.
    fp32 = torch.float32 in (wq.dtype, k_cache.dtype)
    cfg = block_sizes.choose("decode_layer", torch.float32 if fp32 else wq.dtype, d)
    block_n = cfg.blocks["BLOCK_N"]
    ieee = wq.dtype == torch.float32  # fp32 weights: IEEE products, as version 1
    args = (x2d, nw1, wq, wk, wv, cos, sin, k_cache, v_cache, wo, nw2, wg, wu, wd,
            qs, att, hs, act, out, bsz, hidden, inter, n_q, n_kv, d, int(pos), float(eps),
            1.0 / math.sqrt(d), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
            v_cache.stride(0), v_cache.stride(1), v_cache.stride(2))
    meta = dict(IEEE=ieee, ATT_IEEE=k_cache.dtype == torch.float32, BLOCK_B=BLOCK_B,
                BLOCK_H=max(16, triton.next_power_of_2(d // 2)),
                BLOCK_G=max(16, triton.next_power_of_2(n_q // n_kv)),
                BLOCK_D=max(16, triton.next_power_of_2(d)), **cfg.blocks,
                num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    tiles = (n_q + 2 * n_kv, bsz * n_kv, triton.cdiv(hidden, block_n),
             triton.cdiv(inter, block_n),
             triton.cdiv(hidden, block_n))
    programs = persistent_programs(dev, max(tiles))
    if persistent and programs is None:
        raise ValueError("the persistent decode kernel needs a GPU (all programs resident); "
                         f"this run is in {runtime.MODE} mode")
    if programs is not None and persistent is not False:
        own_status = barrier_status is None
        status = new_barrier_status(dev) if own_status else barrier_status
        launch_persistent(args, meta, tiles, programs, status)
        if own_status:
            check_barrier_status(status)
    else:
        for stage in range(N_STAGES):
            runtime.count("decode_layer_staged")
            _decode_stage_kernel[(tiles[stage],)](*args, STAGE=stage, **meta)
    return out.view(bsz, 1, hidden)


def reference(x: torch.Tensor, weights, k_cache: torch.Tensor, v_cache: torch.Tensor,
              pos: int, cos: torch.Tensor, sin: torch.Tensor, eps: float,
              persistent: bool | None = None,
              barrier_status: torch.Tensor | None = None) -> torch.Tensor:
    """Plain PyTorch ``decode_layer``, built from the plain references of the stage kernels
    (no Triton kernel): the same shapes, the same append of the new K/V at ``pos``, the
    output in x's dtype. ``persistent`` and ``barrier_status`` are accepted for the same
    signature and not used. The test checks it against version 1's layer; the bench times it.
    """
    nw1, wq, wk, wv, wo, nw2, wg, wu, wd = weights
    bsz, _, hidden = x.shape
    n_kv, d = k_cache.shape[1], k_cache.shape[3]
    n_q = wq.shape[0] // d
    qkv = v4_norm_qkv_rope.reference(x, nw1, wq, wk, wv, cos, sin, eps)[:, 0]  # (B, heads, D)
    k_cache[:, :, pos] = qkv[:, n_q:n_q + n_kv].to(k_cache.dtype)
    v_cache[:, :, pos] = qkv[:, n_q + n_kv:].to(v_cache.dtype)
    attn = v3_decode_attention.reference(qkv[:, :n_q], k_cache, v_cache, pos + 1)
    h = v4_linear_residual.reference(attn.reshape(bsz, 1, n_q * d), wo, x)
    act = v4_norm_gate_up_swiglu.reference(h, nw2, wg, wu, eps)
    return v4_linear_residual.reference(act, wd, h).to(x.dtype)
