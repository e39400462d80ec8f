import sys

from version1_baseline.cli import main
from version3_triton import SPEC

sys.exit(main(SPEC))
