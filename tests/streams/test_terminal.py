"""Capture under a terminal keeps the delegate on a terminal (issue 16 A2).

shim runs on a pseudo-terminal this test makes (the session's controlling terminal, as in
`docker run -it`); with masking on, the delegate must still see terminals on 0-2 of the same
size, get SIGWINCH when it changes and Ctrl-C as a key, and its output must still be masked,
teed and sent to sinks.
"""

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import termios
import time

from support import base_env, shim_command

ENV = base_env(SECRET="pty-secret-value", TERM="dumb")


class OnTerminal:
    """shim as the leader of a session whose controlling terminal is our pty."""

    def __init__(self, args, rows=33, cols=111):
        self.master, slave = os.openpty()
        self.resize(rows, cols, slave)
        self.proc = subprocess.Popen(
            shim_command() + args, stdin=slave, stdout=slave, stderr=slave, env=ENV,
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.slave = slave  # kept: the terminal's mode can be read after shim is gone
        self.out = b""

    def resize(self, rows, cols, fd=None):
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, text, timeout=30):
        """Read the terminal until `text` appears (the event the test syncs on)."""
        end = time.monotonic() + timeout
        while text not in self.out:
            left = end - time.monotonic()
            assert left > 0 and select.select([self.master], [], [], left)[0], self.out
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every slave is closed
                chunk = b""
            assert chunk, f"ended before {text!r}: {self.out!r}"
            self.out += chunk
        return self.out

    def finish(self, timeout=30):
        code = self.proc.wait(timeout)
        try:
            while select.select([self.master], [], [], 0.2)[0]:
                chunk = os.read(self.master, 65536)
                if not chunk:
                    break
                self.out += chunk
        except OSError:
            pass
        os.close(self.master)
        os.close(self.slave)
        return code


def test_masked_output_still_comes_from_a_terminal_of_the_same_size(tmp_path):
    sink, tee = tmp_path / "s.jsonl", tmp_path / "out.tee"
    t = OnTerminal(["--mask-env", "SECRET", "--log-sink", f"file://{sink}",
                    "--stdout-path", str(tee), "--", "sh", "-c",
                    "test -t 0 && test -t 1 && test -t 2 && echo all-tty; stty size; "
                    "echo $SECRET; echo on-stderr >&2"])
    assert t.finish() == 0
    # stdout and stderr are two terminals (two streams): their order is not one stream's.
    assert b"all-tty\r\n33 111\r\n" in t.out and b"***\r\n" in t.out
    assert b"on-stderr\r\n" in t.out and b"pty-secret-value" not in t.out
    lines = [json.loads(x)["line"] for x in sink.read_bytes().splitlines()]
    assert "33 111\r" in lines and "***\r" in lines and "pty-secret-value" not in str(lines)
    assert b"***" in tee.read_bytes() and b"pty-secret-value" not in tee.read_bytes()


def test_sigwinch_reaches_the_delegate_with_the_new_size():
    t = OnTerminal(["--mask-env", "SECRET", "--", "sh", "-c",
                    "trap 'echo winch; stty size' WINCH; echo ready; "
                    "while :; do sleep 0.05; done"])
    t.read_until(b"ready")
    t.resize(40, 120)  # the kernel sends SIGWINCH to shim, the foreground of our terminal
    t.read_until(b"winch\r\n40 120")
    t.proc.send_signal(signal.SIGTERM)
    assert t.finish() == 128 + signal.SIGTERM


def test_ctrl_c_is_a_key_the_delegate_gets_once():
    t = OnTerminal(["--mask-env", "SECRET", "--", "sh", "-c",
                    "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done"])
    t.read_until(b"ready")
    os.write(t.master, b"\x03")  # ^C: raw on shim's terminal, a signal on the delegate's
    t.read_until(b"got-int")
    assert t.finish() == 7
    assert t.out.count(b"got-int") == 1


def test_keys_reach_the_delegate_and_the_terminal_mode_is_restored():
    t = OnTerminal(["--mask-env", "SECRET", "--", "sh", "-c",
                    "echo ready; read line; echo \"got [$line]\"; stty -a"])
    t.read_until(b"ready")
    os.write(t.master, b"hello\r")
    t.read_until(b"got [hello]")
    assert termios.tcgetattr(t.slave)[3] & termios.ECHO == 0  # raw while the delegate runs
    assert t.proc.wait(30) == 0
    # shim's terminal is back in its own mode (canonical, echo, signals) once shim is gone.
    lflag = termios.tcgetattr(t.slave)[3]
    assert lflag & termios.ICANON and lflag & termios.ECHO and lflag & termios.ISIG
    assert t.finish() == 0


def test_a_pipe_stays_a_pipe():
    r = subprocess.run(shim_command() + ["--mask-env", "SECRET", "--", "sh", "-c",
                                         "test -t 1 || echo not-a-tty"],
                       env=ENV, capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == b"not-a-tty\n"


def test_the_delegates_user_owns_its_terminal():
    """With --user, the pty is the user's (as under login or docker): its path reopens."""
    t = OnTerminal(["--user", "65534", "--mask-env", "SECRET", "--", "sh", "-c",
                    "id -u; echo via-pts > \"$(tty)\" && echo reopened"])
    assert t.finish() == 0
    assert b"65534\r\nvia-pts\r\nreopened\r\n" in t.out, t.out
