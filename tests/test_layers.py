"""Layers point one way: model packages never import the harness, except their ``__main__``."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL_PACKAGES = sorted(p for p in REPO.glob("version*") if p.is_dir())


def imported_modules(source: str) -> set[str]:
    """Every module named by an ``import`` / ``from ... import`` anywhere in ``source``
    (function bodies included: a hidden local import counts too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_scanner_sees_local_imports():
    source = "import os\ndef f():\n    from benchmarks.cli import main\n    import benchmarks\n"
    assert {"benchmarks.cli", "benchmarks"} <= imported_modules(source)


def test_model_packages_import_benchmarks_only_in_main():
    assert len(MODEL_PACKAGES) == 4, MODEL_PACKAGES
    offenders = []
    for package in MODEL_PACKAGES:
        for path in sorted(package.rglob("*.py")):
            if path.name == "__main__.py":
                continue
            for name in imported_modules(path.read_text()):
                if name == "benchmarks" or name.startswith("benchmarks."):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "model packages must not import the harness:\n" + "\n".join(offenders)


@pytest.mark.parametrize("package", [p.name for p in MODEL_PACKAGES])
def test_each_main_is_the_shared_cli(package):
    assert "benchmarks.cli" in imported_modules((REPO / package / "__main__.py").read_text())
