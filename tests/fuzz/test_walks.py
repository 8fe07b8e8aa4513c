"""Permission (and other I/O) errors at any point of a walk over files.

Each function that reads directories or files runs with the k-th file-system call
failing (EACCES, EIO, ENOENT, ELOOP, ENOTDIR): it must succeed with what it could
read, or fail with a one-line ShimError, never with the raw OSError (issue 8, #4:
`install --list` as a user who cannot read one version directory gave 119).
Root ignores permissions, so the failure is injected rather than chmod-made.
"""

import builtins
import errno
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from shim.commands import install
from shim.config import options
from shim.errors import ShimError
from shim.run import envlayer, hooks, results

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
ERRNOS = [errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.ELOOP, errno.ENOTDIR]
# (os.access is not patched: it returns False on any error, it never raises)
PATCHED = ("listdir", "scandir", "stat", "lstat", "open")


class FailAt:
    """Make the k-th call of any patched file-system function raise OSError(code)."""

    def __init__(self, k, code):
        self.k, self.code, self.calls, self.saved = k, code, 0, {}

    def _wrap(self, fn):
        def wrapper(*args, **kw):
            self.calls += 1
            if self.calls == self.k:
                raise OSError(self.code, os.strerror(self.code))
            return fn(*args, **kw)
        return wrapper

    def __enter__(self):
        for name in PATCHED:
            self.saved[name] = getattr(os, name)
            setattr(os, name, self._wrap(self.saved[name]))
        self.saved["builtins.open"] = builtins.open
        builtins.open = self._wrap(builtins.open)
        return self

    def __exit__(self, *exc):
        for name in PATCHED:
            setattr(os, name, self.saved[name])
        builtins.open = self.saved["builtins.open"]


def _tree(root):
    """A results dir, a hooks dir, a versions dir, an env file and a config file."""
    for sub in ("results", "hooks", "pvc/1.0-a", "pvc/1.1-b", "pvc/1.2-c"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        (root / "results" / f"r{i}").write_text(f"v{i}")
        hook = root / "hooks" / f"{i}0-hook"
        hook.write_text("#!/bin/sh\n")
        hook.chmod(0o755)
    for version in ("1.0-a", "1.1-b", "1.2-c"):
        (root / "pvc" / version / "shim").write_bytes(b"x")
    (root / "a.env").write_text("A=1\n")
    (root / "c.json").write_text('{"supervise": {"grace": "1s"}}')
    return root


WALKS = {
    "install --list": lambda r: install.run(install.parse(["--list", str(r / "pvc")], {}),
                                            {}, _Null(), lambda line: None),
    "install sweep": lambda r: install.sweep(str(r / "pvc"), now=1e12),
    "results dir": lambda r: results.read_results(str(r / "results")),
    "hooks dir": lambda r: hooks.list_hooks(str(r / "hooks")),
    "env file": lambda r: envlayer._read_env_file(str(r / "a.env")),
    "config file": lambda r: options.load_config_file(str(r / "c.json")),
}


class _Null:
    def write(self, text):
        pass

    def flush(self):
        pass


@settings(max_examples=60 * SCALE)
@given(st.sampled_from(sorted(WALKS)), st.integers(1, 12), st.sampled_from(ERRNOS))
def test_a_failing_call_anywhere_in_a_walk_is_reported_not_raised(walk, k, code):
    with tempfile.TemporaryDirectory() as tmp:
        root = _tree(Path(tmp))
        try:
            with FailAt(k, code):
                WALKS[walk](root)
        except ShimError as err:
            assert "\n" not in err.message()
            assert err.code in (118, 125), err.message()
