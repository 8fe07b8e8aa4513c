"""Root conftest: shared fixtures; helpers live in support.py (re-exported here)."""

from pathlib import Path

import pytest

from support import IN_CI, REPO, missing, require_tool, shim_command  # noqa: F401


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
