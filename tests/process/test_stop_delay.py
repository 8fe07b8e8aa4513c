"""--stop-delay: the delegate keeps running for the delay after shim's stop signal, then gets it;
a second stop signal forwards at once; both are counted in the result record's counters.

The delegate timestamps the signal it receives; synchronisation is on events (its "ready"
line, shim's signal no longer pending in /proc), never on sleeps.
"""

import json
import signal
import subprocess
import sys
import time

from shim.errors import EXIT_USAGE
from support import base_env, run, shim_command, wait_for

DELEGATE = r"""
import os, signal, sys, time
def on(signo, frame):  # os.write: a handler must not re-enter a buffered print
    os.write(1, f"got {signal.Signals(signo).name} {time.time()}\n".encode())
    os._exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on)
os.write(1, b"ready\n")
while True:
    signal.pause()
"""


def _start(args, tmp_path):
    result = tmp_path / "r.json"
    proc = subprocess.Popen(shim_command() + ["--result-file", str(result)] + args +
                            ["--", sys.executable, "-c", DELEGATE], env=base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    return proc, result


def _consumed(pid, signo):
    """shim has read `signo` from its signalfd: it is no longer pending for the process."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    pending = int(fields["ShdPnd"], 16) | int(fields["SigPnd"], 16)
    return not pending & (1 << (signo - 1))


def _got(proc):
    word, name, when = proc.stdout.readline().split()
    assert word == b"got"
    return name.decode(), float(when)


def test_the_delay_is_respected(tmp_path):
    proc, result = _start(["--stop-delay", "1500ms"], tmp_path)
    try:
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        name, when = _got(proc)
        assert name == "SIGTERM"
        assert when - sent >= 1.5, when - sent
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    counters = json.loads(result.read_text())["counters"]["stop_delay"]
    assert counters["delayed"] == 1 and counters["skipped"] == 0
    assert counters["held_s"] >= 1.5


def test_a_second_stop_signal_forwards_at_once(tmp_path):
    proc, result = _start(["--stop-delay", "60s"], tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: _consumed(proc.pid, signal.SIGTERM))  # held, not merged with the next
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        name, when = _got(proc)
        assert name == "SIGTERM"
        assert when - sent < 30  # far from the 60 s delay
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    counters = json.loads(result.read_text())["counters"]["stop_delay"]
    assert counters == {"delayed": 1, "skipped": 1, "held_s": counters["held_s"]}
    assert counters["held_s"] < 30


def test_other_signals_are_not_delayed(tmp_path):
    proc, _ = _start(["--stop-delay", "60s"], tmp_path)
    try:
        proc.send_signal(signal.SIGHUP)
        assert _got(proc)[0] == "SIGHUP"
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_the_delay_from_a_profile(tmp_path):
    """Exposed per runtime profile: the config file's profile for the detected runtime."""
    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps({"profiles": {"kubernetes": {"supervise": {"stop_delay": "1s"}}}}))
    proc, result = _start(["--config", str(cfg), "--runtime", "kubernetes"], tmp_path)
    try:
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        assert _got(proc)[1] - sent >= 1.0
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert json.loads(result.read_text())["counters"]["stop_delay"]["delayed"] == 1


def test_zero_negative_and_exec_are_refused():
    for value in ("0", "-5s", "soon"):
        r = run(["--stop-delay", value, "--", "true"])
        assert r.returncode == EXIT_USAGE, (value, r.stderr)
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and "--stop-delay" in lines[0], lines
    r = run(["--", "true"], env=base_env(SHIM_STOP_DELAY="0s"))
    assert r.returncode == EXIT_USAGE and b"SHIM_STOP_DELAY" in r.stderr
    r = run(["--exec", "--stop-delay", "5s", "--", "true"])
    assert r.returncode == EXIT_USAGE and b"--stop-delay" in r.stderr
