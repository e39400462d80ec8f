"""python -m exercises list | show ID | skeleton ID --out F | check ID (--answer X --run DIR | --file F)"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import catalog
from .checks import CHECKS, RunError, judge
from .skeleton import KERNEL_EXERCISES, run_kernel_tests, skeleton


def _check(args) -> int:
    if args.id in KERNEL_EXERCISES:
        if not args.file:
            raise SystemExit(f"error: {args.id} is a kernel exercise: pass --file YOUR_KERNEL.py")
        proc = run_kernel_tests(args.id, Path(args.file))
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        print("\n".join(tail))
        if proc.returncode == 0:
            print(f"correct: {args.file} passes {KERNEL_EXERCISES[args.id].tests}")
            return 0
        print(f"not yet: {args.file} fails {KERNEL_EXERCISES[args.id].tests} (output above)")
        return 1
    if args.id not in CHECKS:
        raise SystemExit(f"error: no exercise {args.id!r}; see `python -m exercises list`")
    if args.answer is None or args.run is None:
        raise SystemExit(f"error: {args.id} needs --answer and --run (the folder its command wrote)")
    try:
        exp = CHECKS[args.id](Path(args.run))
        ok, message = judge(exp, args.answer)
    except (RunError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(("correct: " if ok else "not yet: ") + message)
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exercises", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="every exercise, in the order to take them")
    show = sub.add_parser("show", help="print an exercise")
    show.add_argument("id")
    skel = sub.add_parser("skeleton", help="write a kernel exercise's skeleton")
    skel.add_argument("id")
    skel.add_argument("--out", required=True)
    check = sub.add_parser("check", help="check an answer against your own run")
    check.add_argument("id")
    check.add_argument("--answer", help="a number or a choice")
    check.add_argument("--run", help="the results folder the exercise's command wrote")
    check.add_argument("--file", help="kernel exercises: your completed kernel file")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for eid, rung in catalog.ORDER:
            kind = "kernel" if eid in KERNEL_EXERCISES else "analysis"
            print(f"{eid:20} {rung:3} {kind:8} {catalog.title(eid)}")
        return 0
    if args.cmd == "show":
        try:
            print(catalog.markdown_path(args.id).read_text())
        except KeyError as exc:
            raise SystemExit(f"error: {exc.args[0]}")
        return 0
    if args.cmd == "skeleton":
        try:
            text = skeleton(args.id)
        except KeyError as exc:
            raise SystemExit(f"error: {exc.args[0]}")
        Path(args.out).write_text(text)
        print(f"wrote {args.out}: complete the YOUR CODE lines, then "
              f"`python -m exercises check {args.id} --file {args.out}`")
        return 0
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
