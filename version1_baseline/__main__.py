import sys

from version1_baseline import SPEC
from version1_baseline.cli import main

sys.exit(main(SPEC))
