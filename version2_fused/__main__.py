"""``python -m version2_fused``: the shared CLI with version 2's fusion flags."""
import dataclasses
import sys

from version1_baseline.cli import main
from version2_fused import SPEC
from version2_fused.spec import describe


def describe_and_print(model):
    # The shared CLI prints a fixed summary; the SDPA backend line is printed here.
    facts = describe(model)
    print(f"  {facts['summary']}")
    return facts


sys.exit(main(dataclasses.replace(SPEC, describe=describe_and_print)))
