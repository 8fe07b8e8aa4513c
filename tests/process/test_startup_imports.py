"""The run path stays small: `shim -- true` loads no build/tooling code and no heavy stdlib."""

import subprocess
import sys

from support import REPO

# Modules the run path must never import (tooling, other subcommands, or costly stdlib).
FORBIDDEN = {"enum", "platform", "re", "subprocess", "argparse", "json", "ctypes", "threading",
             "asyncio", "uvloop", "shim.commands.install", "shim.commands.check", "shim.config.schema", "shim.commands.version",
             "tools_image", "build", "hashlib", "tarfile", "zipfile", "shlex"}


def _imported(args):
    r = subprocess.run([sys.executable, "-S", "-X", "importtime", "-m", "shim"] + args,
                       cwd=REPO, capture_output=True, text=True, timeout=30)
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return r, names


def test_exec_path_imports_nothing_heavy():
    r, names = _imported(["--", "true"])
    assert r.returncode == 0
    assert "shim.run.pipeline" in names
    assert not names & FORBIDDEN, sorted(names & FORBIDDEN)


def test_supervise_path_imports_nothing_heavy():
    # From source, ctypes is how shim becomes a subreaper; the static build uses _shim_native.
    r, names = _imported(["--supervise", "--", "true"])
    assert r.returncode == 0
    assert not names & (FORBIDDEN - {"ctypes"}), sorted(names & FORBIDDEN)
