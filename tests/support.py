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



# No test may reach a cloud metadata endpoint by accident: with no AWS credentials configured,
# a credential chain (shim's, botocore's) asks 169.254.169.254.  Tests point it at a closed
# loopback port instead (conftest.py sets it in os.environ too); a test of the IMDS provider
# passes its own stub's address.
METADATA_ENV = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"}


def base_env(**extra):
    """A small, exact environment so tests can compare the delegate's env exactly."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
           **METADATA_ENV}
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


class _CountingStr(str):
    """A str that counts the characters its searches scan (C-level work that Python's
    line events do not see: a `find` to the end of the text per line is quadratic too)."""

    scanned = 0

    def _span(self, start, end):
        n = len(self)
        start = 0 if start is None else (start + n if start < 0 else start)
        end = n if end is None else (end + n if end < 0 else end)
        return max(0, min(end, n) - max(0, start))

    def find(self, sub, start=None, end=None):
        found = str.find(self, sub, start, end)
        span = self._span(start, end)
        if found >= 0:  # scanned from start up to the match, not to the end
            first = 0 if start is None else (start + len(self) if start < 0 else start)
            span = found + len(sub) - first
        _CountingStr.scanned += max(span, 1)
        return found

    def index(self, sub, start=None, end=None):
        found = self.find(sub, start, end)
        if found < 0:
            raise ValueError("substring not found")
        return found

    def rfind(self, sub, start=None, end=None):
        _CountingStr.scanned += self._span(start, end)
        return str.rfind(self, sub, start, end)

    def startswith(self, prefix, *args):
        _CountingStr.scanned += max(len(p) for p in prefix) if isinstance(prefix, tuple) else len(prefix)
        return str.startswith(self, prefix, *args)

    def _whole(name):
        def method(self, *args, **kw):
            _CountingStr.scanned += len(self)
            return getattr(str, name)(self, *args, **kw)
        return method

    for _name in ("__contains__", "count", "replace", "split", "splitlines", "partition",
                  "strip", "lstrip", "rstrip", "encode", "isprintable",
                  "isascii", "lower", "upper"):
        locals()[_name] = _whole(_name)
    del _name, _whole


def count_work(fn, text, *args):
    """Work `fn(text, *args)` does: Python line events plus characters its searches scan.

    Deterministic, unlike wall time, so a linearity check can be an assertion."""
    import sys

    from shim.errors import ShimError

    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
        return tracer

    _CountingStr.scanned = 0
    wrapped = _CountingStr(text)
    sys.settrace(tracer)
    try:
        fn(wrapped, *args)
    except (ShimError, ValueError):
        pass
    finally:
        sys.settrace(None)
    return lines + _CountingStr.scanned
