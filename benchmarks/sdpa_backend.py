"""Which SDPA backend a version-2 run actually used, observed rather than assumed.

Method: run one representative step of the real workload (same model, batch, sequence
length, dtype/autocast, grad mode, cache state) under ``torch.profiler`` and read the
names of the aten ops that ``F.scaled_dot_product_attention`` dispatched to. Each backend
is its own aten op, so the name is the backend. On a GPU, when flash did not run, torch's
own eligibility check (``torch.backends.cuda.can_use_flash_attention(..., debug=True)``)
is asked for its reasons on tensors of the same shapes and dtype.
"""
from __future__ import annotations

import warnings

import torch
from torch.profiler import ProfilerActivity, profile

from version1_baseline.train import autocast_context, causal_lm_loss
from version2_fused import fusions as fusion_support

from .workloads import make_workload

# aten op -> backend. Backward ops carry the same stem plus "_backward".
SDPA_KERNEL_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (CPU kernel)",
    "aten::_scaled_dot_product_efficient_attention": "memory-efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cuDNN",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable (out-of-tree)",
}


def sdpa_ops_in(step, device: torch.device) -> dict[str, int]:
    """Run ``step()`` once under the profiler; return {SDPA backend aten op: calls}."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    counts: dict[str, int] = {}
    for event in prof.events():
        stem = event.name.removesuffix("_backward")
        if stem in SDPA_KERNEL_OPS:
            counts[event.name] = counts.get(event.name, 0) + 1
    return counts


def representative_step(model, mode: str, batch: int, seq: int, device: torch.device,
                        dtype: torch.dtype):
    """A zero-argument callable doing what one step of ``mode`` does to attention,
    without changing the model's weights (train: forward + gradients via autograd.grad,
    never an optimizer step). Inputs are random token ids of shape (batch, seq)."""
    cfg = model.config
    autocast = autocast_context(device.type, dtype)
    if mode == "train":
        ids = torch.randint(cfg.vocab_size, (batch, seq), device=device)
        params = [p for p in model.parameters() if p.requires_grad]

        def train_step():
            model.train()
            with autocast:
                loss = causal_lm_loss(model(ids), ids)
            torch.autograd.grad(loss, params)
        return train_step
    return make_workload(model, mode, batch, seq, device, dtype).step


def flash_refusal_reasons(config, batch: int, seq: int, dtype: torch.dtype,
                          device: torch.device, requires_grad: bool) -> list[str]:
    """GPU only: torch's own reasons why the flash kernel would not take these inputs."""
    from torch.backends.cuda import SDPAParams, can_use_flash_attention

    h, kv, d = config.num_heads, config.num_kv_heads, config.head_dim
    q = torch.empty(batch, h, seq, d, device=device, dtype=dtype, requires_grad=requires_grad)
    k = torch.empty(batch, kv, seq, d, device=device, dtype=dtype, requires_grad=requires_grad)
    gqa = fusion_support.HAS_NATIVE_GQA and h != kv
    params = SDPAParams(q, k, k, None, 0.0, True, gqa)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        can_use_flash_attention(params, debug=True)
    return [str(w.message) for w in caught]


def describe_sdpa(model, mode: str, batch: int, seq: int, device: torch.device,
                  dtype: torch.dtype) -> dict:
    """Facts for the JSON ``extra``: the backend seen, the ops counted, how, and why."""
    config, fusions = model.config, model.fusions
    method = (f"torch.profiler aten op names during one {mode} step at batch {batch}, "
              f"seq {seq}, {dtype} on {device}")
    groups = config.num_heads // config.num_kv_heads
    gqa = ("n/a (num_heads == num_kv_heads)" if groups == 1 else
           "native enable_gqa" if fusion_support.HAS_NATIVE_GQA else
           "expand_kv_heads (a view for kv_heads == 1, else a copy)")
    if not fusions.sdpa:
        return {"sdpa_backend": "none (sdpa switch off: eager mask + softmax)",
                "sdpa_kernel_ops": {}, "sdpa_backend_method": method, "gqa": "repeat_interleave"}
    ops = sdpa_ops_in(representative_step(model, mode, batch, seq, device, dtype), device)
    seen = sorted({SDPA_KERNEL_OPS[name.removesuffix("_backward")] for name in ops})
    facts = {"sdpa_backend": " + ".join(seen) if seen else "not observed",
             "sdpa_kernel_ops": ops, "sdpa_backend_method": method, "gqa": gqa}
    if not seen:
        facts["sdpa_note"] = ("no SDPA backend op ran: the compiled graph replaced "
                              "scaled_dot_product_attention with generated code"
                              if fusions.compile_mode else "no SDPA backend op ran")
    elif device.type == "cpu":
        facts["sdpa_note"] = (
            "CPU: the CUDA flash / memory-efficient / cuDNN kernels do not exist here; torch's "
            "CPU dispatcher chooses between its own flash-style CPU kernel and math"
            + ("; the CPU flash kernel ran" if "flash (CPU kernel)" in seen else
               "; it refused these inputs, so math ran"))
    elif "flash" not in seen:
        reasons = flash_refusal_reasons(config, batch, seq, dtype, device, mode == "train")
        facts["sdpa_note"] = "flash did not run; torch says: " + (
            " | ".join(reasons) if reasons else "no reason given")
    return facts
