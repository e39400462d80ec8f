"""``python -m version4_ultra``: the shared CLI (``benchmarks.cli``) for this version."""
import sys

from benchmarks.cli import main
from version4_ultra import SPEC

sys.exit(main(SPEC))
