"""``python -m version3_triton``: the shared CLI (``benchmarks.cli``) for this version."""
import sys

from benchmarks.cli import main
from version3_triton import SPEC

sys.exit(main(SPEC))
