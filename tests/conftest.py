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
