"""Root conftest: shared fixtures; helpers live in support.py (re-exported here)."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from support import IN_CI, METADATA_ENV, REPO, missing, require_tool, shim_command  # noqa: F401

for _name, _value in METADATA_ENV.items():  # processes started with os.environ inherit it
    os.environ.setdefault(_name, _value)

# Property tests (hypothesis), one profile per kind of run:
# - ci: CI=true.  Derandomized (examples drawn from a seed fixed by each test's source)
#   and no example database: the same examples on every machine and every run, so a
#   landing is never blocked by a new random draw.  What is known to have broken
#   once is pinned with @example and checked on every run, in every profile.
# - dev: a developer's run, random as hypothesis is by default.
# - explore: `scripts/test explore`, the separate, non-blocking search for new
#   falsifying examples (random, more examples); what it finds becomes an @example.
# SHIM_HYPOTHESIS_PROFILE names one explicitly.
_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", derandomize=False, **_COMMON)
settings.register_profile("explore", derandomize=False, **_COMMON)
HYPOTHESIS_PROFILE = os.environ.get("SHIM_HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev")
settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture
def shim():
    return shim_command()


def pytest_collection_modifyitems(config, items):
    """Mark tests by tier from their directory."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "process" in parts:
            item.add_marker(pytest.mark.process)
        if "container" in parts:
            item.add_marker(pytest.mark.container)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true every skip is a failure, however it was asked for (pytest.skip,
    a skip/skipif mark, importorskip): CI must not pass green on a machine that
    quietly ran less.  An xfail is not a skip and is left alone."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a skip is a failure in CI): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped at collection (pytest.skip(allow_module_level=True))."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a skip is a failure in CI): {report.longrepr}"


def _loopback_only(event, args):
    """Network tests use loopback only: an in-process connect/sendto anywhere else fails.

    (Network namespaces and containers the tests create have their own loopback; those run
    in other processes, where this hook does not reach.)
    """
    if event not in ("socket.connect", "socket.sendto"):
        return
    address = args[1] if event == "socket.connect" else args[-1]
    if not isinstance(address, tuple):
        return  # unix sockets
    host = str(address[0])
    if host.startswith("127.") or host in ("::1", "localhost", "0.0.0.0", "::") or \
            host.startswith("::ffff:127."):
        return
    raise PermissionError(f"test network guard: connect to {host} (only loopback is allowed)")


import sys  # noqa: E402

sys.addaudithook(_loopback_only)


@pytest.fixture(autouse=True)
def _fresh_mask_registry():
    """In-process tests run many fetches in one process: each starts with an empty registry
    of sensitive values (shim.util.mask.REGISTRY), as a run of shim does."""
    yield
    mask = sys.modules.get("shim.util.mask")
    if mask is not None:
        mask.REGISTRY.clear()
