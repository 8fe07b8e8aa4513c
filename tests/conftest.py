"""Shared test fixtures and the no-silent-skip rule.

With CI=true a missing tool is a failure, never a skip: `require_tool` fails the
test so a machine that lacks what the suite needs cannot pass green.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what):
    """Fail under CI, skip on a developer machine; say how to get it."""
    msg = f"{what} is missing; run scripts/setup"
    if IN_CI:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        missing(f"tool {name!r}")
    return path


def shim_command():
    """argv prefix that runs the shim under test.

    SHIM_BIN=path/to/binary runs the frozen binary; otherwise the source tree
    through this interpreter.
    """
    binary = os.environ.get("SHIM_BIN")
    if binary:
        return [binary]
    return [sys.executable, "-m", "shim"]


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
