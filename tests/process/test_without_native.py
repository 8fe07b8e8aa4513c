"""Without the C module (the Nuitka/PyInstaller comparison builds link none), shim still
supervises correctly: signals are polled instead of read from a signalfd, and spawn
runs in Python.  The C module is hidden with a sitecustomize that blocks its import.
"""

import os
import signal
import subprocess
import sys

import pytest

from support import REPO, base_env, wait_for


@pytest.fixture
def no_native(tmp_path):
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["_shim_native"] = None\n')
    env = base_env()
    env["PYTHONPATH"] = f"{tmp_path}:{REPO}"
    return env


def _shim(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "shim"] + args, env=env, capture_output=True,
                          timeout=60, **kw)


def test_exit_code_and_env_pass_through(no_native):
    r = _shim(["--supervise", "-e", "A=1", "--", "sh", "-c", 'echo "$A"; exit 7'], no_native)
    assert r.returncode == 7 and r.stdout == b"1\n", r.stderr


def test_timeout_escalates_to_kill(no_native):
    r = _shim(["--supervise", "--timeout", "0.5", "--grace", "0.5", "--", "sh", "-c",
               "trap '' TERM; sleep 30"], no_native)
    assert r.returncode == 124, r.stderr


def test_term_is_forwarded(no_native):
    proc = subprocess.Popen([sys.executable, "-m", "shim", "--supervise", "--", "sleep", "30"],
                            env=no_native)
    assert wait_for(lambda: subprocess.run(["pgrep", "-P", str(proc.pid)],
                                           capture_output=True).returncode == 0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM


def test_delegate_signal_state_is_clean(no_native):
    out = _shim(["--supervise", "--", "cat", "/proc/self/status"], no_native).stdout.decode()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert int(fields["SigBlk"], 16) == 0
    assert os.path.exists("/proc/self/status")
