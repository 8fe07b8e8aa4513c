"""Fuzz tier: hypothesis over every parser, every SHIM_* variable and every
subcommand's argv, with the inputs that broke shim before (issue 8): non-ASCII
digits, NUL bytes, closed/full stdout, permission errors mid-walk, inputs built
to be quadratic.  Under CI=true each test runs FUZZ_SCALE times more examples,
derandomized like every property test in CI (the profile is loaded by
tests/conftest.py); `scripts/test explore` is the random search, with more still."""

import os

from support import IN_CI

FUZZ_SCALE = 5 if IN_CI else 1
os.environ.setdefault("SHIM_FUZZ_SCALE", str(FUZZ_SCALE))
