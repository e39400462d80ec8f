"""``python -m version2_fused``: the shared CLI with version 2's fusion flags."""
import sys

from version1_baseline.cli import main
from version2_fused import SPEC

sys.exit(main(SPEC))
