import sys

from version1_baseline.cli import main
from version4_ultra import SPEC

sys.exit(main(SPEC))
