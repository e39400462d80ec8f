"""Static activation scales for the offloaded blocks, from a float calibration pass.

Scheme (BACKEND.md has the full text): run the float model once on calibration inputs and
record, for every decoder block, its input hidden state x (B, S, hidden) and its output y.
Then, per block, ``quantize_block`` (below) runs the block's float pieces on each
calibration sequence (positions 0..S-1) and sets every activation scale to absmax / 127 over
all of them; weights are quantized there too (int8, absmax / 127). Scales are then frozen:
every later call, prefill or decode, uses them. Before quantizing, the rebuilt v1 block must
reproduce the recorded y from the recorded x; a block that computes anything else stays on
the host.

Two sources of calibration inputs:
* ``capture_model`` (``hw_offload.offload(model, calibration=ids)``): forward hooks on
  ``model.model.layers`` during an eager forward over ``ids``;
* ``capture_graph`` (``torch.compile(model, backend="rtl")``, which never sees the model):
  the Dynamo graph itself, interpreted in float on the first call's inputs, with every
  non-parameter tensor input cloned so the caller's KV cache is not written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.fx import GraphModule, Interpreter

from version1_baseline.config import TinyLlamaConfig
from version1_baseline.model import DecoderLayer, RotaryEmbedding, apply_rotary, eager_attention

from .partition import BlockGroup
from .quant import QuantizedBlock, channel_scales, quantize, scale_of

SEMANTIC_RTOL = 1e-4   # the rebuilt block vs the recorded float output, relative to max |y|


@dataclass
class FloatTrace:
    """Float intermediates of the v1 block for one input x (S, hidden), all float64 numpy."""

    x: np.ndarray
    xn: np.ndarray
    q: np.ndarray      # (S, heads*head_dim) after RoPE
    k: np.ndarray      # (S, kv_heads*head_dim) after RoPE
    v: np.ndarray
    attn: np.ndarray   # (S, heads*head_dim) before o_proj
    h1: np.ndarray
    h1n: np.ndarray
    mid: np.ndarray    # silu(gate) * up
    y: np.ndarray


def float_trace(layer, x, cos, sin) -> FloatTrace:
    """Run v1's DecoderLayer pieces on x: (S, hidden) at positions 0..S-1 and keep every
    intermediate (the accelerator's quantization points); checked against the layer itself."""
    att = layer.self_attn
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)[None]
        s = xt.shape[1]
        xn = layer.input_layernorm(xt)
        q = att.q_proj(xn).view(1, s, att.num_heads, att.head_dim).transpose(1, 2)
        k = att.k_proj(xn).view(1, s, att.num_kv_heads, att.head_dim).transpose(1, 2)
        v = att.v_proj(xn).view(1, s, att.num_kv_heads, att.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        o = eager_attention(q, k, v, past=0).transpose(1, 2).reshape(1, s, -1)
        h1 = xt + att.o_proj(o)
        h1n = layer.post_attention_layernorm(h1)
        mid = torch.nn.functional.silu(layer.mlp.gate_proj(h1n)) * layer.mlp.up_proj(h1n)
        y = h1 + layer.mlp.down_proj(mid)
        ref = layer(xt, cos, sin)
        if not torch.allclose(ref, y, atol=1e-5, rtol=1e-5):
            raise AssertionError("float_trace disagrees with DecoderLayer.forward")
    f = lambda t: t[0].double().numpy() if t.dim() == 3 else t.double().numpy()  # noqa: E731
    tr = lambda t: t[0].transpose(0, 1).reshape(s, -1).double().numpy()  # noqa: E731
    return FloatTrace(x=f(xt), xn=f(xn), q=tr(q), k=tr(k), v=tr(v), attn=f(o), h1=f(h1),
                      h1n=f(h1n), mid=f(mid), y=f(y))


def quantize_block(layer, config, calib_x, cos, sin, per_channel: bool = True) -> QuantizedBlock:
    """Quantize a v1 DecoderLayer (weights: quant.py's numpy scheme; activation scales: float_trace). calib_x: (S, hidden) or (B, S, hidden) float calibration
    inputs; each activation scale is the absmax over all of them / 127.

    per_channel=False gives every row of a matrix the matrix's scale (per-tensor weights, the
    baseline that benchmarks/hw/bench_quant.py compares against); the program is the same.
    """
    att, mlp = layer.self_attn, layer.mlp
    mats = {"q": att.q_proj, "k": att.k_proj, "v": att.v_proj, "o": att.o_proj,
            "gate": mlp.gate_proj, "up": mlp.up_proj, "down": mlp.down_proj}
    weights, wscales, cscales = {}, {}, {}
    for name, lin in mats.items():
        w, what = lin.weight.detach().double().numpy(), f"weight {_param_name(layer, lin)}"
        cscales[name] = channel_scales(w, what)      # NaN / inf weights: ValueError naming them
        wscales[name] = float(cscales[name].max())
        if not per_channel:
            cscales[name] = np.full_like(cscales[name], wscales[name])
        weights[name] = quantize(w, cscales[name][:, None], what)
    gammas, gscales = {}, {}
    for name, norm in (("input_norm", layer.input_layernorm), ("post_norm", layer.post_attention_layernorm)):
        g, what = norm.weight.detach().double().numpy(), f"weight {_param_name(layer, norm)}"
        gscales[name] = scale_of(g, what)
        gammas[name] = quantize(g, gscales[name], what)
    calib = np.asarray(calib_x)
    traces = [float_trace(layer, xb, cos, sin) for xb in (calib if calib.ndim == 3 else calib[None])]
    acts = {name: max(scale_of(getattr(t, name), f"calibration activation {name}") for t in traces)
            for name in ("x", "xn", "q", "k", "v", "attn", "h1", "h1n", "mid", "y")}
    return QuantizedBlock(hidden=config.hidden_size, heads=config.num_heads,
                          kv_heads=config.num_kv_heads, head_dim=config.head_dim,
                          intermediate=config.intermediate_size, rope_theta=config.rope_theta,
                          weights=weights, weight_scales=wscales, channel_scales=cscales,
                          gammas=gammas,
                          gamma_scales=gscales, act_scales=acts)


def _param_name(layer: torch.nn.Module, module: torch.nn.Module) -> str:
    """``module``'s weight as the layer names it (``self_attn.q_proj.weight``)."""
    return next(f"{n}.weight" for n, m in layer.named_modules() if m is module)


def capture_graph(gm: GraphModule, groups: list[BlockGroup], args) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Interpret ``gm`` in float on ``args``; -> {layer: (x, y)} for every group with x and y."""
    want: dict = {}   # node -> [(kind, layer)]: one node is layer i's y and layer i+1's x
    for g in groups:
        for kind, node in (("x", g.x), ("y", g.y)):
            if node is not None:
                want.setdefault(node, []).append((kind, g.layer))
    seen: dict[int, dict[str, torch.Tensor]] = {}

    class Recorder(Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            for kind, layer in want.get(n, ()):
                seen.setdefault(layer, {})[kind] = out.detach().clone()
            return out

    safe = [a.clone() if isinstance(a, torch.Tensor) and not isinstance(a, torch.nn.Parameter) else a
            for a in args]
    with torch.no_grad():
        Recorder(gm).run(*safe)
    return {layer: (v["x"], v["y"]) for layer, v in seen.items() if "x" in v and "y" in v}


def capture_model(model, input_ids: torch.Tensor) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Eager forward of a v1-layout model; -> {id(q_proj.weight): (x, y)} per decoder layer."""
    found: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for layer in model.model.layers:
        key = id(layer.self_attn.q_proj.weight)

        def hook(mod, inputs, output, key=key):
            found[key] = (inputs[0].detach().clone(), output.detach().clone())
        hooks.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    return found


def tensor_versions(tensors: dict[str, torch.Tensor]) -> dict[str, tuple]:
    """What identifies each tensor's current contents without reading them: its storage
    address, its version counter (bumped by every in-place write, ``p.mul_(-1)`` under
    ``no_grad`` included), shape and dtype. Writes that bypass the counter (through
    ``p.data`` or a numpy view of the storage) are not seen."""
    return {k: (t.data_ptr(), t._version, tuple(t.shape), t.dtype) for k, t in tensors.items()}


class ModelCalibration:
    """``capture_model(model, input_ids)``, redone whenever a parameter of the model changed
    since the last capture (``tensor_versions``), so the scales follow the current weights."""

    def __init__(self, model: torch.nn.Module, input_ids: torch.Tensor):
        self.model, self.input_ids = model, input_ids
        self._io: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._versions: dict[str, tuple] | None = None

    def get(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """{id(q_proj.weight): (x, y)} per decoder layer (see ``capture_model``)."""
        now = tensor_versions(dict(self.model.named_parameters()))
        if self._io is None or now != self._versions:
            self._io = capture_model(self.model, self.input_ids)
            self._versions = now
        return self._io


def quantize_model(model, input_ids: torch.Tensor) -> list[QuantizedBlock]:
    """Every decoder layer of a v1 model quantized with static scales from a float pass over
    ``input_ids`` (int64 (B, S)), as ``hw_offload.offload(model, calibration=input_ids)`` does."""
    io = capture_model(model, input_ids)
    return [quantize_calibrated(layer, model.config, io[id(layer.self_attn.q_proj.weight)][0])
            for layer in model.model.layers]


def rope_theta(inv_freq: torch.Tensor, head_dim: int) -> float:
    """Invert v1's inv_freq = theta^(-2i/d) at i = 1."""
    return float(inv_freq[1].double() ** (-head_dim / 2))


def rebuild_layer(params: dict[str, torch.Tensor], head_dim: int, eps: float, theta: float,
                  max_seq_len: int) -> tuple[DecoderLayer, TinyLlamaConfig]:
    """A float v1 DecoderLayer holding these weights (HF names relative to the layer)."""
    q, k, gate = (params[f"{p}.weight"] for p in ("self_attn.q_proj", "self_attn.k_proj", "mlp.gate_proj"))
    hidden = q.shape[1]
    cfg = TinyLlamaConfig(vocab_size=1, hidden_size=hidden, num_layers=1,
                          num_heads=q.shape[0] // head_dim, num_kv_heads=k.shape[0] // head_dim,
                          intermediate_size=gate.shape[0], max_seq_len=max_seq_len,
                          rope_theta=theta, rms_norm_eps=eps)
    if cfg.head_dim != head_dim:
        raise ValueError(f"q_proj {tuple(q.shape)} with head_dim {head_dim} is not hidden/num_heads")
    layer = DecoderLayer(cfg)
    layer.load_state_dict({k: v.detach().float() for k, v in params.items()}, strict=True)
    return layer.eval(), cfg


def rotary(cfg: TinyLlamaConfig, start: int, length: int):
    """cos, sin (length, head_dim) for positions start..start+length-1, as v1 computes them."""
    return RotaryEmbedding(cfg.head_dim, cfg.rope_theta)(torch.arange(start, start + length))


def semantic_mismatch(layer: DecoderLayer, cfg: TinyLlamaConfig, x: torch.Tensor, y: torch.Tensor) -> str | None:
    """None if the rebuilt v1 block maps the recorded x to the recorded y; else the reason."""
    for name, t in (("input", x), ("output", y)):
        if not torch.isfinite(t).all():
            return f"its calibration {name} holds NaN or inf"
    cos, sin = rotary(cfg, 0, x.shape[1])
    with torch.no_grad():
        got = layer(x.float(), cos, sin)
    err = float((got - y.float()).abs().max())
    tol = SEMANTIC_RTOL * max(float(y.abs().max()), 1e-6)
    if not math.isfinite(err) or err > tol:
        return (f"computes something other than a Llama decoder block (max difference {err:.3g} "
                f"from the v1 block with its weights, tolerance {tol:.3g})")
    return None


def quantize_calibrated(layer: DecoderLayer, cfg: TinyLlamaConfig, x: torch.Tensor,
                        per_channel: bool = True) -> QuantizedBlock:
    """quantize_block over calibration inputs x (B, S, hidden) at positions 0..S-1."""
    cos, sin = rotary(cfg, 0, x.shape[1])
    return quantize_block(layer, cfg, np.asarray(x.detach().double()), cos, sin,
                          per_channel=per_channel)
