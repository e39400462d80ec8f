"""``python -m version2_fused``: the shared CLI (``benchmarks.cli``) for this version."""
import sys

from benchmarks.cli import main
from version2_fused import SPEC

sys.exit(main(SPEC))
