"""Every Triton kernel comes as a triplet: the kernel file's plain-PyTorch ``reference``, its
test and its benchmark, the last two using that one reference (no copies of it).

Cheap: AST reads of the files, signature checks, and each bench run once on a machine
without a GPU, where it must refuse with status 2 and say why (it times nothing there).
"""
import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
# Kernel files that hold shared device helpers, not a kernel with a functional entry point.
HELPERS = {"__init__", "dot", "compute_dtype", "norm_prologue", "softmax_base2"}
# (package, kernel file, functional entry point, test file)
KERNELS = [
    ("version3_triton", "rms_norm", "rms_norm", "test_kernel_rms_norm"),
    ("version3_triton", "swiglu", "swiglu", "test_kernel_swiglu"),
    ("version3_triton", "rope", "apply_rope", "test_kernel_rope"),
    ("version3_triton", "cross_entropy", "cross_entropy", "test_kernel_cross_entropy"),
    ("version3_triton", "flash_attention", "flash_attention", "test_kernel_flash_attention"),
    ("version3_triton", "decode_attention", "decode_attention", "test_kernel_decode_attention"),
    ("version4_ultra", "norm_qkv_rope", "norm_qkv_rope", "test_kernel_v4_norm_qkv_rope"),
    ("version4_ultra", "linear_residual", "linear_residual", "test_kernel_v4_linear_residual"),
    ("version4_ultra", "norm_gate_up_swiglu", "norm_gate_up_swiglu",
     "test_kernel_v4_norm_gate_up_swiglu"),
    ("version4_ultra", "decode_layer", "decode_layer", "test_kernel_v4_decode_layer"),
]
BENCHES = sorted(p.stem for p in (ROOT / "benchmarks" / "kernels").glob("bench_*.py"))
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


def test_every_kernel_file_is_listed_here():
    on_disk = {(pkg, p.stem) for pkg in ("version3_triton", "version4_ultra")
               for p in (ROOT / pkg / "kernels").glob("*.py") if p.stem not in HELPERS}
    assert on_disk == {(pkg, name) for pkg, name, _, _ in KERNELS}


def defined_functions(tree):
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def uses_reference(tree, module):
    """``module.reference`` or ``reference`` imported from ``module`` (as ``reference``)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == module and \
                any(a.name == "reference" and a.asname is None for a in n.names):
            return True
        if isinstance(n, ast.Attribute) and n.attr == "reference" and \
                isinstance(n.value, ast.Name):
            if n.value.id in aliases_of(tree, module):
                return True
    return False


def aliases_of(tree, module):
    pkg, _, name = module.rpartition(".")
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == pkg:
            names |= {a.asname or a.name for a in n.names if a.name == name}
    return names


@pytest.mark.parametrize("pkg,name,entry,test", KERNELS, ids=[k[1] for k in KERNELS])
def test_reference_exists_matches_the_entry_and_is_the_one_the_test_and_bench_use(
        pkg, name, entry, test):
    module = f"{pkg}.kernels.{name}"
    kernel = importlib.import_module(module)
    assert callable(getattr(kernel, "reference", None)), f"{module} exports no reference()"
    assert list(inspect.signature(kernel.reference).parameters) == \
        list(inspect.signature(getattr(kernel, entry)).parameters), \
        f"{module}.reference must take the same arguments as {entry}"
    for path in (ROOT / "tests" / f"{test}.py", ROOT / "benchmarks" / "kernels" / f"bench_{name}.py"):
        tree = ast.parse(path.read_text())
        assert uses_reference(tree, module), f"{path.name} does not use {module}.reference"
        copies = defined_functions(tree) & {"reference", "eager"}
        assert not copies, f"{path.name} defines its own {copies}: use {module}.reference"


def test_every_kernel_has_a_bench():
    assert {f"bench_{name}" for _, name, _, _ in KERNELS} <= set(BENCHES)


@NO_GPU
@pytest.mark.parametrize("bench", BENCHES)
def test_bench_refuses_without_a_gpu(bench, capsys):
    mod = importlib.import_module(f"benchmarks.kernels.{bench}")
    with pytest.raises(SystemExit) as exit_:
        mod.main(["--no-compile"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert "no GPU" in captured.err and captured.out == ""


@NO_GPU
def test_bench_refuses_as_a_module_too():
    """``python -m`` (how scripts/gpu_check.sh runs each bench): status 2, the reason on stderr."""
    run = subprocess.run([sys.executable, "-m", "benchmarks.kernels.bench_decode_layer"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no GPU" in run.stderr and run.stdout == ""
