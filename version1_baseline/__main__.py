"""``python -m version1_baseline``: the shared CLI (``benchmarks.cli``) for this version."""
import sys

from benchmarks.cli import main
from version1_baseline import SPEC

sys.exit(main(SPEC))
