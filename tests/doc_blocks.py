"""Code blocks of the Markdown docs, and the commands in them, for tests that run the docs.

Blocks are fenced (```bash / ```python) or indented by four spaces. An HTML comment
on the line just before a block says what a test does with it:

    <!-- doc-test: run -->                    run every command of the block as written
    <!-- doc-test: run with --steps 2 ... --> run them with these flags appended (argparse
                                              keeps the last value: a quick run of the same
                                              command)

Every other ``python -m MODULE ...`` line of a block is *parsed*: the module is imported and
its own argument parser reads the flags, then it stops before doing any work, so a doc that
names a module or flag that does not exist fails.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*doc-test:\s*run(?:\s+with\s+(?P<extra>.*?))?\s*-->")


@dataclass
class Block:
    path: str
    line: int             # 1-based line of the block's first code line
    lang: str             # "bash", "python", "" (unlabelled fence or indented block)
    code: str
    run_with: list[str] | None   # None: not marked; [] run as written; else flags to append


def code_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.search(lines[i - 1]) if i and lines[i - 1].strip() else (
            MARKER.search(lines[i - 2]) if i > 1 else None)
        run_with = (shlex.split(marker.group("extra") or "") if marker else None)
        if line.startswith("```"):
            lang, start = line[3:].strip(), i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            blocks.append(Block(str(path), start + 1, lang, "\n".join(lines[start:i]), run_with))
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            start = i
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                i += 1
            code = "\n".join(x[4:] for x in lines[start:i]).strip("\n")
            blocks.append(Block(str(path), start + 1, "", code, run_with))
            continue
        i += 1
    return blocks


def commands(block: Block) -> list[list[str]]:
    """The shell commands of a block as argv lists: comments and ``[optional]`` usage
    parts dropped, ``VAR=value`` prefixes dropped, continuation lines joined."""
    text = re.sub(r"\\\n", " ", block.code)
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s#.*$", "", line).strip()
        line = re.sub(r"\[[^\]]*\]", "", line)
        if not re.match(r"(?:[A-Z_]+=\S*\s+)*(?:python3?|bash)\s", line):
            continue     # not a command (prose, a layout tree, program output)
        argv = shlex.split(line)
        while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
            argv.pop(0)
        if argv and argv[0] in ("python", "python3", "bash"):
            out.append(argv)
    return out


# Runs in a fresh interpreter: each job is [module, argv, "parse" | "run"]. "parse" stops
# inside the module's own ArgumentParser.parse_args, after the flags were read.
_DRIVER = r"""
import argparse, json, os, runpy, sys, traceback
class Parsed(Exception):
    pass
real_parse, real_execv, real_env = argparse.ArgumentParser.parse_args, os.execv, dict(os.environ)
def parse_then_stop(self, args=None, namespace=None):
    real_parse(self, args, namespace)
    raise Parsed()
failures = []
for module, argv, how in json.loads(sys.argv[1]):
    argparse.ArgumentParser.parse_args = parse_then_stop if how == "parse" else real_parse
    # a module that re-executes itself (compile_gate) just carries on to its parser
    os.execv = (lambda *a: None) if how == "parse" else real_execv
    os.environ.clear()
    os.environ.update(real_env)
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Parsed:
        pass
    except SystemExit as exc:
        if exc.code not in (0, None):
            failures.append(f"python -m {module} {' '.join(argv)}: exit {exc.code}")
    except BaseException as exc:
        failures.append(f"python -m {module} {' '.join(argv)}: {type(exc).__name__}: {exc}")
        traceback.print_exc()
print("DOC-TEST FAILURES " + json.dumps(failures))
"""


def run_python_modules(jobs: list[tuple[str, list[str], str]], cwd: Path, timeout: float = 900
                       ) -> list[str]:
    """Run or parse ``python -m`` jobs in one fresh interpreter (torch imported once);
    return one message per job that failed (import error, unknown flag, non-zero exit)."""
    env_path = str(REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + _DRIVER,
         json.dumps(jobs)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if not tail or not tail[0].startswith("DOC-TEST FAILURES "):
        return [f"driver crashed (exit {proc.returncode}): {proc.stderr[-2000:]}"]
    return json.loads(tail[0][len("DOC-TEST FAILURES "):])
