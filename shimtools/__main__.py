"""`python -m shimtools k8s …` runs through the runtime's CLI edge (one place prints errors)."""

import sys

from shim.cli import main

sys.exit(main(sys.argv[1:]))
