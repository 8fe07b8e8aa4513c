"""Breakpoints (Tekton semantics): --breakpoint-on-failure writes DEBUG_DIR/failed and waits for
DEBUG_DIR/resume, then exits with the delegate's code; --breakpoint-before pauses before the
delegate starts; a stop signal ends a pause at once.  Synchronised on shim's own lines.
"""

import json
import os
import select
import signal
import subprocess
import time

from shim.errors import EXIT_USAGE
from support import base_env, run, shim_command


class _Stderr:
    def __init__(self, proc):
        self.proc, self.text = proc, ""

    def until(self, needle, timeout=20.0):
        end = time.monotonic() + timeout
        while needle not in self.text:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(0.0, left))
            chunk = os.read(self.proc.stderr.fileno(), 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"{needle!r} not in {self.text!r}")
            self.text += chunk.decode()
        return self.text


def _start(args, env=None):
    proc = subprocess.Popen(shim_command() + args, env=env or base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return proc, _Stderr(proc)


def test_failure_pauses_until_resume_then_exits_with_the_delegates_code(tmp_path):
    debug = tmp_path / "debug"  # created by shim
    proc, err = _start(["--breakpoint-on-failure", "--debug-dir", str(debug), "--",
                        "sh", "-c", "exit 3"])
    try:
        err.until("breakpoint: the delegate failed")
        assert proc.poll() is None  # still there: the container stays up
        record = json.loads((debug / "failed").read_text())
        assert record["exit_code"] == 3 and record["delegate_exit_code"] == 3
        assert record["reason"] == "exited"
        assert json.loads((debug / "paused").read_text())["breakpoint"] == "on-failure"
        assert str(debug / "resume") in err.text
        (debug / "resume").write_text("")
        assert proc.wait(timeout=20) == 3
    finally:
        proc.kill()
        proc.wait()
    assert not (debug / "resume").exists() and not (debug / "paused").exists()
    assert (debug / "failed").exists()  # the record stays for whoever looks later


def test_a_killed_delegate_counts_as_failed(tmp_path):
    proc, err = _start(["--breakpoint-on-failure", "--debug-dir", str(tmp_path), "--",
                        "sh", "-c", "kill -KILL $$"])
    try:
        err.until("breakpoint: the delegate failed")
        assert json.loads((tmp_path / "failed").read_text())["signal"] == "SIGKILL"
        (tmp_path / "resume").write_text("")
        assert proc.wait(timeout=20) == 128 + 9
    finally:
        proc.kill()
        proc.wait()


def test_success_does_not_pause(tmp_path):
    r = run(["--breakpoint-on-failure", "--debug-dir", str(tmp_path), "--", "true"])
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "failed").exists()


def test_a_stop_signal_ends_the_failure_pause_with_the_delegates_code(tmp_path):
    proc, err = _start(["--breakpoint-on-failure", "--debug-dir", str(tmp_path), "--",
                        "sh", "-c", "exit 5"])
    try:
        err.until("breakpoint: the delegate failed")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 5
    finally:
        proc.kill()
        proc.wait()


def test_before_pauses_until_resume(tmp_path):
    ran = tmp_path / "ran"
    proc, err = _start(["--breakpoint-before", "--debug-dir", str(tmp_path), "--",
                        "touch", str(ran)])
    try:
        err.until("breakpoint: paused before the delegate starts")
        assert json.loads((tmp_path / "paused").read_text())["breakpoint"] == "before"
        assert proc.poll() is None and not ran.exists()
        (tmp_path / "resume").write_text("")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert ran.exists()
    assert not (tmp_path / "resume").exists()  # consumed


def test_before_and_on_failure_each_need_their_own_resume(tmp_path):
    proc, err = _start(["--breakpoint-before", "--breakpoint-on-failure", "--debug-dir",
                        str(tmp_path), "--", "sh", "-c", "exit 4"])
    try:
        err.until("breakpoint: paused before")
        (tmp_path / "resume").write_text("")
        err.until("breakpoint: the delegate failed")
        assert proc.poll() is None
        (tmp_path / "resume").write_text("")
        assert proc.wait(timeout=20) == 4
    finally:
        proc.kill()
        proc.wait()


def test_a_stop_signal_ends_the_before_pause_at_once(tmp_path):
    ran = tmp_path / "ran"
    proc, err = _start(["--breakpoint-before", "--debug-dir", str(tmp_path), "--",
                        "touch", str(ran)])
    try:
        err.until("breakpoint: paused before")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert not ran.exists()


def test_exec_env_during_the_pause_sees_the_delegates_environment(tmp_path):
    env = base_env(SHIM_ENV="GREETING=hello", SHIM_BREAKPOINT_ON_FAILURE="true",
                   SHIM_DEBUG_DIR=str(tmp_path))
    proc, err = _start(["--", "sh", "-c", "exit 1"], env=env)
    try:
        err.until("breakpoint: the delegate failed")
        r = subprocess.run(shim_command() + ["exec-env", "--", "env"], env=env,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert b"GREETING=hello\n" in r.stdout
        (tmp_path / "resume").write_text("")
        assert proc.wait(timeout=20) == 1
    finally:
        proc.kill()
        proc.wait()


def test_bad_debug_dirs_are_one_line_usage_errors(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [(["--breakpoint-on-failure"], "--debug-dir"),
             (["--breakpoint-before"], "--debug-dir"),
             (["--breakpoint-on-failure", "--debug-dir", str(a_file)], "not a directory"),
             (["--breakpoint-on-failure", "--debug-dir", str(a_file / "sub")], "not a directory")]
    for args, cause in cases:
        r = run(args + ["--", "touch", str(tmp_path / "ran")])
        lines = r.stderr.decode().splitlines()
        assert r.returncode == EXIT_USAGE, (args, r.stderr)
        assert len(lines) == 1 and cause in lines[0], (args, lines)
    assert not (tmp_path / "ran").exists()
    r = run(["--exec", "--breakpoint-on-failure", "--debug-dir", str(tmp_path), "--", "true"])
    assert r.returncode == EXIT_USAGE and b"--breakpoint-on-failure" in r.stderr
