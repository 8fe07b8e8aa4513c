"""The process and streams tiers, and the secrets CLI tests, against the amd64 binary.

Those tests run the source tree by default; with SHIM_BIN they run a binary
(tests/conftest.py::shim_command).  This runs them once more on the frozen binary,
so the static build is held to exactly the source version's behaviour: signals,
reaping, exit codes, env; capture, sinks, masking, relay, heartbeat; fetching over
TLS from OpenBao and moto.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_process_tier_passes_on_the_binary(binary):
    env = {**os.environ, "SHIM_BIN": str(binary("amd64"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/process", "tests/streams", "tests/secrets/test_run.py"],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1200, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
