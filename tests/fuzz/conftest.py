"""Fuzz tier: hypothesis over every parser, every SHIM_* variable and every
subcommand's argv, with the inputs that broke shim before (issue 8): non-ASCII
digits, NUL bytes, closed/full stdout, permission errors mid-walk, inputs built
to be quadratic.  Under CI=true each test runs FUZZ_SCALE times more examples."""

import os

from hypothesis import HealthCheck, settings

from support import IN_CI

FUZZ_SCALE = 5 if IN_CI else 1
# A fixed derandomized profile would find nothing new in CI; a random one with
# more examples is the point of the tier.
settings.register_profile("shim", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shim")
os.environ.setdefault("SHIM_FUZZ_SCALE", str(FUZZ_SCALE))
