"""The docs run as written: every command in README.md and hw_offload/README.md names a
module, script and flags that exist, and the blocks marked ``<!-- doc-test: run ... -->``
run (with the quick flags the marker appends). Mechanism: ``tests/doc_blocks.py``."""
from __future__ import annotations

import pytest

from doc_blocks import REPO_ROOT, Block, code_blocks, commands, run_python_modules

DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "hw_offload" / "README.md"]


def _blocks() -> list[Block]:
    return [b for doc in DOCS for b in code_blocks(doc)]


def _jobs_and_problems(blocks):
    jobs, problems = [], []
    for block in blocks:
        where = f"{block.path}:{block.line}"
        for argv in commands(block):
            if argv[0] == "bash":
                if not (REPO_ROOT / argv[1]).is_file():
                    problems.append(f"{where}: `{' '.join(argv)}`: no script {argv[1]}")
            elif argv[1:2] == ["-c"]:
                compile(argv[2], where, "exec")          # a syntax error fails here
            elif argv[1:3] == ["-m", "pytest"]:
                missing = [a for a in argv[3:] if a.endswith(".py")
                           and not (REPO_ROOT / a.split("::")[0]).is_file()]
                if missing:
                    problems.append(f"{where}: pytest on missing files {missing}")
            elif argv[1:2] == ["-m"]:
                how = "parse" if block.run_with is None else "run"
                jobs.append((argv[2], argv[3:] + (block.run_with or []), how))
            else:
                problems.append(f"{where}: `{' '.join(argv)}`: not a command this test knows")
    return jobs, problems


def test_every_documented_command_exists_and_marked_blocks_run(tmp_path):
    blocks = _blocks()
    jobs, problems = _jobs_and_problems(blocks)
    assert any(how == "run" for *_, how in jobs), "no block is marked to run"
    assert len([j for j in jobs if j[2] == "parse"]) >= 8, jobs
    problems += run_python_modules(jobs, cwd=tmp_path)
    assert not problems, "\n".join(problems)


def test_a_wrong_module_or_flag_in_a_doc_fails(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\npython -m version1_baseline --preset tiny --no-such-flag\n"
                   "python -m version1_baseline.no_such_module\n"
                   "python -m version1_baseline --mode prefill --steps 1\n"
                   "bash no_such_script.sh\n```\n")
    jobs, problems = _jobs_and_problems(code_blocks(doc))
    failures = run_python_modules(jobs, cwd=tmp_path)
    assert len(failures) == 2, failures     # the third command parses
    assert "--no-such-flag" in failures[0] and "exit 2" in failures[0]
    assert "no_such_module" in failures[1]
    assert problems == [f"{doc}:2: `bash no_such_script.sh`: no script no_such_script.sh"]


def test_marker_appends_quick_flags():
    text = ("intro\n\n<!-- doc-test: run with --steps 2 --prompt 'a b' -->\n```bash\n"
            "python -m x --steps 300  # long\n```\n\n    python -m y [--out DIR]\n")
    path = REPO_ROOT / "tests" / "_doc_blocks_probe.md"
    path.write_text(text)
    try:
        fenced, indented = code_blocks(path)
    finally:
        path.unlink()
    assert fenced.run_with == ["--steps", "2", "--prompt", "a b"] and fenced.lang == "bash"
    assert commands(fenced) == [["python", "-m", "x", "--steps", "300"]]
    assert indented.run_with is None and commands(indented) == [["python", "-m", "y"]]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.parent.name if p.parent != REPO_ROOT
                         else p.name)
def test_docs_have_commands(doc):
    assert any(commands(b) for b in code_blocks(doc)), f"{doc}: no commands found"
