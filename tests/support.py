"""Helpers shared by every test tier (importable as `support`: tests/ is on sys.path).

With CI=true a missing tool is a failure, never a skip: `require_tool` fails the
test so a machine that lacks what the suite needs cannot pass green.
"""

import os
import shutil
import subprocess
import sys
import time
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



def base_env(**extra):
    """A small, exact environment so tests can compare the delegate's env exactly."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    if not os.environ.get("SHIM_BIN"):
        env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run(args, env=None, timeout=60, **kw):
    """Run the shim under test with `args`; returns CompletedProcess (bytes)."""
    return subprocess.run(shim_command() + list(args), env=env or base_env(), timeout=timeout,
                          capture_output=True, **kw)


def as_pid1(args, env=None, timeout=60, **kw):
    """Run the shim as PID 1 of a new PID namespace (with its own /proc)."""
    require_tool("unshare")
    cmd = ["unshare", "--pid", "--fork", "--mount-proc"] + shim_command() + list(args)
    return subprocess.run(cmd, env=env or base_env(), timeout=timeout, capture_output=True, **kw)


def wait_for(predicate, timeout=10.0, interval=0.01):
    """Poll `predicate` until true or `timeout`; returns whether it became true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False
