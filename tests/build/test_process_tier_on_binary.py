"""The process tier (signals, reaping, 128+n, env) against the amd64 binary.

tests/process runs the source tree by default; with SHIM_BIN it runs a binary
(tests/conftest.py::shim_command).  This runs that tier once more on the frozen
binary, so the static build is held to exactly the source version's behaviour.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_process_tier_passes_on_the_binary(binary):
    env = {**os.environ, "SHIM_BIN": str(binary("amd64"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/process"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
