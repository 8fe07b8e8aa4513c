"""Issue 22: what dumb-init's users rely on — every standard signal forwarded (fault
signals included), rewrites to another signal or to 0 (ignored), job control as a
shell's job, and a resident shim that keeps no directory busy.  Own tests (dumb-init's
are not copied): real processes, a delegate that reports each signal it gets."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from support import base_env, require_tool, shim_command, wait_for

# Writes each caught signal's number as a line; exits on stdin EOF.  Catches everything
# catchable (TSTP/TTIN/TTOU too, so they do not stop it) but SIGCHLD, which shim reaps on.
REPORTER = r"""
import os, signal, sys
def caught(sig, frame):
    os.write(1, b"%d\n" % sig)
for sig in range(1, 32):
    if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        signal.signal(sig, caught)
os.write(1, ("ready %d %s\n" % (os.getpid(), os.getcwd())).encode())
while sys.stdin.buffer.read1(1):
    pass
"""
STANDARD = [s for s in range(1, 32) if s not in (signal.SIGKILL, signal.SIGSTOP)]
FAULTS = [signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
          signal.SIGSEGV, signal.SIGSYS]


class Reporter:
    """shim --supervise over REPORTER, in its own session (no controlling terminal)."""

    def __init__(self, args, cwd=None):
        self.proc = subprocess.Popen(shim_command() + ["--supervise"] + args +
                                     ["--", sys.executable, "-c", REPORTER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=base_env(), cwd=cwd, start_new_session=True)
        self.buf = b""
        ready = self.line().split()
        assert ready[0] == "ready", ready
        self.delegate, self.delegate_cwd = int(ready[1]), ready[2]

    def line(self, timeout=10.0):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            assert left > 0 and select.select([self.proc.stdout], [], [], left)[0], \
                f"no line from the delegate (so far {self.buf!r})"
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            assert chunk, f"the delegate's output ended (shim exit {self.proc.poll()})"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def send(self, sig):
        os.kill(self.proc.pid, sig)

    def close(self):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.proc.stdout.close()


@pytest.fixture
def reporter():
    made = []

    def start(args=(), cwd=None):
        made.append(Reporter(list(args), cwd))
        return made[-1]

    yield start
    for r in made:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def test_every_standard_signal_is_forwarded_one_by_one(reporter):
    r = reporter()
    for sig in STANDARD:
        if sig == signal.SIGCHLD:
            continue  # shim's own: it reaps on it (as tini and dumb-init do)
        r.send(sig)
        assert r.line() == str(sig), signal.Signals(sig).name
        assert r.proc.poll() is None, f"shim ended on {signal.Signals(sig).name}"
    assert r.close() == 0


def test_fault_signals_sent_with_kill_are_forwarded_not_fatal(reporter):
    r = reporter()
    for sig in FAULTS:
        r.send(sig)
        assert r.line() == str(sig), signal.Signals(sig).name
    assert r.proc.poll() is None
    assert r.close() == 0


def test_rewrites_of_every_signal_including_faults(reporter):
    # Each FROM goes out as a different TO: the fault signals both ways.
    pairs = {s: (STANDARD[(i + 1) % len(STANDARD)]) for i, s in enumerate(STANDARD)
             if s != signal.SIGCHLD}
    pairs = {f: t for f, t in pairs.items() if t != signal.SIGCHLD}
    args = []
    for f, t in pairs.items():
        args += ["--rewrite", f"{signal.Signals(f).name[3:]}:{t}"]
    r = reporter(args)
    for f, t in pairs.items():
        r.send(f)
        assert r.line() == str(t), (signal.Signals(f).name, signal.Signals(t).name)
    assert r.close() == 0


def test_a_rewrite_to_0_ignores_the_signal_while_others_arrive(reporter):
    r = reporter(["--rewrite", "TERM:0", "--rewrite", "SEGV:0"])
    r.send(signal.SIGTERM)
    r.send(signal.SIGSEGV)
    r.send(signal.SIGHUP)
    assert r.line() == str(signal.SIGHUP)  # TERM and SEGV never came before it
    r.send(signal.SIGTERM)
    r.send(signal.SIGUSR1)
    assert r.line() == str(signal.SIGUSR1)
    assert r.proc.poll() is None  # and shim did not act on TERM either
    assert r.close() == 0


@pytest.mark.parametrize("where", ["SHIM_REWRITE", "config"])
def test_ignored_signal_from_the_environment_and_config(tmp_path, where):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"supervise": {"rewrite": {"INT": "0", "QUIT": "0"}}}')
    args, env = (["--config", str(cfg)], base_env()) if where == "config" else \
        ([], base_env(SHIM_REWRITE="INT:0,QUIT:0"))
    r = Reporter.__new__(Reporter)
    r.proc = subprocess.Popen(shim_command() + ["--supervise"] + args +
                              ["--", sys.executable, "-c", REPORTER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, start_new_session=True)
    r.buf = b""
    try:
        assert r.line().startswith("ready")
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2):
            r.send(sig)
        assert r.line() == str(signal.SIGUSR2)
        assert r.close() == 0
    finally:
        if r.proc.poll() is None:
            r.proc.kill()


def test_stop_signal_rewritten_to_0_does_not_interrupt_the_pre_hooks(tmp_path):
    hooks = tmp_path / "pre"
    hooks.mkdir()
    started = tmp_path / "started"
    hook = hooks / "10-wait"
    hook.write_text(f"#!/bin/sh\ntouch {started}\nsleep 0.5\n")
    hook.chmod(0o755)
    proc = subprocess.Popen(shim_command() + ["--rewrite", "TERM:0", "--pre-hooks", str(hooks),
                                              "--", "echo", "ran"],
                            stdout=subprocess.PIPE, env=base_env(), start_new_session=True)
    assert wait_for(started.exists)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and out == b"ran\n"


def test_the_resident_shim_leaves_its_start_directory(reporter, tmp_path):
    start = tmp_path / "volume"
    start.mkdir()
    r = reporter(cwd=start)
    assert r.delegate_cwd == str(start)
    assert os.readlink(f"/proc/{r.delegate}/cwd") == str(start)
    assert wait_for(lambda: os.readlink(f"/proc/{r.proc.pid}/cwd") == "/")
    assert r.close() == 0


def test_hooks_start_in_the_start_directory_and_relative_paths_keep_meaning(tmp_path):
    start = tmp_path / "work"
    (start / "pre").mkdir(parents=True)
    (start / "post").mkdir()
    for phase in ("pre", "post"):
        hook = start / phase / "10-pwd"
        hook.write_text(f"#!/bin/sh\npwd > {phase}.pwd\n")
        hook.chmod(0o755)
    proc = subprocess.run(shim_command() + ["--pre-hooks", "pre", "--post-hooks", "post",
                                            "--post-file", "done", "--", "sh", "-c", "pwd"],
                          cwd=start, env=base_env(), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == str(start)
    assert (start / "pre.pwd").read_text().strip() == str(start)
    assert (start / "post.pwd").read_text().strip() == str(start)  # after shim moved to /
    assert (start / "done").exists()  # --post-file done: relative to the start directory


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class OnTerminal:
    """shim (not PID 1) as the session leader of a new pseudo-terminal it controls, the
    way an interactive shell's job runs; the delegate reports signals to a file."""

    def __init__(self, tmp_path, delegate):
        require_tool("setsid")
        self.master, slave = os.openpty()
        self.report = tmp_path / "report"
        self.proc = subprocess.Popen(
            ["setsid", "-c"] + shim_command() + ["--supervise", "--", sys.executable, "-c", delegate,
                                                 str(self.report)],
            stdin=slave, stdout=slave, stderr=slave, env=base_env(), close_fds=True)
        os.close(slave)
        assert wait_for(lambda: self.lines()[:1] and self.lines()[0].startswith("ready")), \
            self.drain()
        self.delegate = int(self.lines()[0].split()[1])

    def lines(self):
        try:
            return self.report.read_text().splitlines()
        except FileNotFoundError:
            return []

    def drain(self):
        out = b""
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                out += os.read(self.master, 4096)
            except OSError:
                break
        return out

    def close(self):
        for pid in (self.proc.pid, self.delegate):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        try:
            os.kill(self.delegate, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.proc.wait(timeout=20)
        os.close(self.master)
        return code


# Reports TSTP/CONT by name, then stops itself on TSTP the default way.
STOPPABLE = r"""
import os, signal, sys
report = open(sys.argv[1], "a", buffering=1)
def on_tstp(sig, frame):
    report.write("TSTP\n")
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTSTP)      # stop for real, like a shell job
    signal.signal(signal.SIGTSTP, on_tstp)   # resumed
def on_cont(sig, frame):
    report.write("CONT\n")
signal.signal(signal.SIGTSTP, on_tstp)
signal.signal(signal.SIGCONT, on_cont)
report.write("ready %d\n" % os.getpid())
while True:
    signal.pause()
"""


def test_job_control_tstp_then_cont_round_trip_under_a_terminal(tmp_path):
    t = OnTerminal(tmp_path, STOPPABLE)
    try:
        os.kill(t.proc.pid, signal.SIGTSTP)  # what `kill -TSTP` or a shell's job control sends
        assert wait_for(lambda: _state(t.delegate) == "T"), _state(t.delegate)
        assert wait_for(lambda: _state(t.proc.pid) == "T"), "shim did not stop with its delegate"
        assert "TSTP" in t.lines()
        os.kill(t.proc.pid, signal.SIGCONT)  # `fg`/`bg`: the shell continues shim's group
        assert wait_for(lambda: "CONT" in t.lines()), t.lines()
        assert wait_for(lambda: _state(t.delegate) != "T" and _state(t.proc.pid) != "T")
    finally:
        t.close()


def test_ctrl_z_on_the_terminal_stops_the_job_and_cont_resumes_it(tmp_path):
    t = OnTerminal(tmp_path, STOPPABLE)
    try:
        # The delegate leads the terminal's foreground group: ^Z goes to it, not to shim.
        assert wait_for(lambda: os.tcgetpgrp(t.master) == t.delegate)
        os.write(t.master, b"\x1a")
        assert wait_for(lambda: _state(t.delegate) == "T")
        assert wait_for(lambda: _state(t.proc.pid) == "T"), "shim did not stop with its delegate"
        assert os.tcgetpgrp(t.master) == os.getpgid(t.proc.pid)  # the terminal is the job's again
        os.kill(t.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: "CONT" in t.lines())
        assert wait_for(lambda: _state(t.delegate) != "T" and _state(t.proc.pid) != "T")
        assert wait_for(lambda: os.tcgetpgrp(t.master) == t.delegate)  # handed back on `fg`
    finally:
        t.close()


def test_without_a_terminal_shim_never_stops_itself(reporter):
    r = reporter()
    r.send(signal.SIGTSTP)
    assert r.line() == str(signal.SIGTSTP)
    assert _state(r.proc.pid) != "T"
    assert r.close() == 0
