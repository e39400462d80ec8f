"""Record the Triton launches that versions 3 and 4 really make, without a GPU.

The models run their ordinary workloads (``benchmarks.workloads``) on CPU tensors with the
Triton interpreter OFF. ``JITFunction.run`` (what ``kernel[grid](...)`` calls) is replaced
for the duration: instead of compiling for the local driver and launching, it binds the
arguments exactly as triton does, specializes them for each target backend (signature,
constexprs, alignment attributes, options such as ``num_warps``) and returns without
running. Outputs the kernels would have written stay uninitialized; nothing downstream
looks at their values, only at shapes, dtypes and the next launches.

So the launch list comes from the model code itself: block sizes, warps, dtypes and which
kernel runs (fp32 "IEEE" or bf16, persistent or staged decode) are whatever the code picks
for a GPU. Three stand-ins, stated here because they are not the GPU's own choice:

* ``runtime.DEVICE`` is CPU, so the kernels' boundary checks accept CPU tensors.
* CPU autocast stands in for CUDA autocast for bf16 (both run ``nn.Linear`` in bf16 and
  leave the residual stream in fp32).
* v4's ``persistent_programs`` (None off a GPU) returns the number of tiles the kernel
  asks for; the gate caps it at each target's SM count as the GPU code does.
* The block sizes come from ``version3_triton.block_sizes`` for the target's family
  (``assume_target``): the model is recorded once per family (NVIDIA, AMD), and each
  family's launches are specialized for that family's targets only.

Grids that depend on the GPU (SM counts) or on the sequence length are what this CPU run
computed; the compiled code does not depend on them.

Must run in a process where ``TRITON_INTERPRET=0`` was set before ``version3_triton`` was
imported (``python -m benchmarks.compile_gate`` sees to that).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field

import torch

from version1_baseline.config import TinyLlamaConfig, get_preset

VERSIONS = ("v3", "v4")
MODES = ("train", "prefill", "decode")
# fp32: fp32 weights, no autocast. bf16: what the harness runs on a GPU, bf16 autocast over
# fp32 master weights. bf16w: the weights (and so the KV cache) stored in bf16, no autocast;
# inference only (nothing trains bf16 parameters here), so it has no train mode.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "bf16w": torch.bfloat16}
# The decode modes a version has: v4 decodes with the persistent kernel on a GPU and has
# the staged five-launch path as its fallback; both are compiled.
DECODE_VARIANTS = {"v3": ("decode",), "v4": ("decode", "decode-staged")}
# Head sizes beyond the presets' (all 32 or 64): tiny with hidden = 8 heads * head_dim.
HEAD_DIM_SWEEP = {f"tiny-hd{d}": d for d in (80, 96, 128)}


@dataclass
class TargetSpec:
    """What ``triton.compile`` needs for one launch on one target."""
    signature: dict
    constexprs: dict
    attrs: dict
    options: dict

    def key(self, kernel: str) -> str:
        """Identical keys compile to identical code (dedupe across presets and modes)."""
        def items(d):
            return sorted((str(k), repr(v)) for k, v in d.items())
        return repr((kernel, items(self.signature), items(self.constexprs), items(self.attrs),
                     items(self.options)))


@dataclass
class Launch:
    """One ``kernel[grid](...)`` call made by a model, specialized for each target."""
    kernel: str                       # module-qualified name of the @triton.jit function
    fn: object = field(repr=False)    # the JITFunction (what ASTSource compiles)
    grid: tuple
    num_warps: int
    num_stages: int
    constexprs: dict                  # by parameter name, for tables
    specs: dict                       # target name -> TargetSpec

    @property
    def short_name(self) -> str:
        module, _, fn = self.kernel.rpartition(".")
        return f"{module.rpartition('.')[2]}.{fn}"


@dataclass
class Context:
    """Where a launch came from: one model workload."""
    version: str
    preset: str
    dtype: str
    mode: str
    batch: int
    seq: int
    head_dim: int


def preset_config(name: str) -> TinyLlamaConfig:
    """A named preset, or a head-dim sweep point (``tiny-hd80`` ...)."""
    if name in HEAD_DIM_SWEEP:
        tiny = get_preset("tiny")
        return tiny.replace(hidden_size=tiny.num_heads * HEAD_DIM_SWEEP[name])
    return get_preset(name)


def _kernel_name(fn) -> str:
    return f"{fn.fn.__module__}.{fn.fn.__qualname__}"


class _Specializer:
    """triton's own argument binding and specialization, once per (kernel, target)."""

    def __init__(self, targets):
        from triton.compiler.compiler import make_backend
        self.targets = targets
        self.backends = {t.name: make_backend(t.gpu_target()) for t in targets}
        self.binders: dict = {}

    def __call__(self, fn, args, kwargs, grid) -> Launch:
        from triton import knobs
        from triton.runtime.jit import create_function_from_signature

        # The same extra options JITFunction.run adds before binding.
        kwargs = dict(kwargs)
        kwargs["debug"] = kwargs.get("debug", fn.debug) or knobs.runtime.debug
        for knob in ("instrumentation_mode", "fpsan_homomorphic_casts"):
            if hasattr(knobs.compilation, knob):
                kwargs[knob] = getattr(knobs.compilation, knob)
        specs, bound = {}, None
        for target in self.targets:
            backend = self.backends[target.name]
            binder = self.binders.get((fn, target.name))
            if binder is None:
                binder = self.binders[(fn, target.name)] = create_function_from_signature(
                    fn.signature, fn.params, backend)
            bound, specialization, options = binder(*args, **kwargs)
            options, signature, constexprs, attrs = fn._pack_args(
                backend, kwargs, bound, specialization, options)
            specs[target.name] = TargetSpec(signature, constexprs, attrs, dict(options.__dict__))
        if callable(grid):
            grid = grid(bound)
        grid = tuple(int(g) for g in grid)
        first = next(iter(specs.values()))
        named = {fn.arg_names[path[0]]: value for path, value in first.constexprs.items()}
        return Launch(_kernel_name(fn), fn, grid, int(first.options["num_warps"]),
                      int(first.options["num_stages"]), named, specs)


@contextlib.contextmanager
def intercept_launches(targets, sink: list):
    """Within this block every ``kernel[grid](...)`` appends a ``Launch`` to ``sink`` and
    runs nothing."""
    from triton.runtime.jit import JITFunction

    specialize = _Specializer(targets)
    original = JITFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        sink.append(specialize(self, args, kwargs, grid))
        return None

    JITFunction.run = run
    try:
        yield
    finally:
        JITFunction.run = original


@contextlib.contextmanager
def gpu_code_paths():
    """Make the model code take its GPU branches on CPU tensors (see the module docstring)."""
    from version3_triton import runtime
    from version4_ultra.kernels import decode_layer

    if runtime.INTERPRET:
        raise RuntimeError(
            "the compile gate needs compiled-mode kernels, but version3_triton.runtime chose "
            "the interpreter (TRITON_INTERPRET was not 0 when it was imported); run it as "
            "`python -m benchmarks.compile_gate`, which sets TRITON_INTERPRET=0 first")
    saved_device, saved_programs = runtime.DEVICE, decode_layer.persistent_programs
    runtime.DEVICE = torch.device("cpu")
    decode_layer.persistent_programs = lambda device, tiles, *rest, **kw: tiles
    try:
        yield
    finally:
        runtime.DEVICE, decode_layer.persistent_programs = saved_device, saved_programs


def _autocast(dtype: str):
    if dtype != "bf16":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def record_model(version: str, preset: str, dtype: str, modes, targets, seq_cap: int = 128,
                 layers: int = 1) -> list[tuple[Context, Launch]]:
    """The launches of one model (``layers`` decoder layers of the preset: every layer makes
    the same launches) for each of ``modes``, at the preset's batch and
    ``min(max_seq_len, seq_cap)`` tokens."""
    from benchmarks.versions import build_model, load_spec
    from benchmarks.workloads import make_workload

    if version not in VERSIONS:
        raise ValueError(f"unknown version {version!r}; the compile gate covers {VERSIONS}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {list(DTYPES)}")
    config = preset_config(preset).replace(num_layers=layers)
    batch, seq = config.batch_size, min(config.max_seq_len, seq_cap)
    spec = load_spec(version, torch.device("cpu"), allow_interpreter=True)
    torch.manual_seed(0)
    model = build_model(spec, config, None, torch.device("cpu"))
    if dtype == "bf16w":
        model = model.to(torch.bfloat16)
    rows: list[tuple[Context, Launch]] = []
    torch_dtype = DTYPES[dtype]
    wanted = [m for m in MODES if m in modes and not (m == "train" and dtype == "bf16w")] + [
        m for m in DECODE_VARIANTS[version] if m in modes and m not in MODES]
    from version3_triton import block_sizes

    families: dict = {}
    for target in targets:
        families.setdefault("amd" if target.backend == "hip" else "nvidia",
                            []).append(target)
    with gpu_code_paths():
        for family, family_targets in families.items():
            for mode in wanted:
                if mode.startswith("decode") and hasattr(model, "set_persistent_decode"):
                    model.set_persistent_decode(False if mode == "decode-staged" else None)
                # Building a decode workload prefills its prompt: launches recorded, dropped.
                with block_sizes.assume_target(family), _autocast(dtype):
                    with intercept_launches(family_targets, []):
                        work = make_workload(model, mode.split("-")[0], batch, seq,
                                             torch.device("cpu"), torch_dtype,
                                             loss_fn=spec.loss_fn)
                    sink: list = []
                    with intercept_launches(family_targets, sink):
                        work.step()
                ctx = Context(version, preset, dtype, mode, batch, seq, config.head_dim)
                rows.extend((ctx, launch) for launch in sink)
    return rows


def context_dict(ctx: Context) -> dict:
    return dataclasses.asdict(ctx)
