"""Exit codes: passthrough 0-255, 128+n for signals, 126/127, remap, on-error."""

import json
import os
import signal
import subprocess

import pytest

from shim.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_USAGE
from support import as_pid1, base_env, require_tool, run, shim_command, wait_for


def test_every_exit_code_passes_through_supervise_mode_as_pid1():
    # One shim per code, each PID 1 of its own PID namespace, as tini's test does: in
    # exec mode this would test only the kernel; as PID 1 shim supervises and must
    # pass each code through itself.
    require_tool("unshare")
    script = ("for c in $(seq 0 255); do unshare --pid --fork --mount-proc %s -- sh -c "
              "\"exit $c\"; echo $?; done")
    shim = " ".join(shim_command())
    out = subprocess.run(["sh", "-c", script % shim], env=base_env(), capture_output=True,
                         text=True, timeout=600)
    assert out.stdout.split() == [str(c) for c in range(256)], out.stderr[-2000:]


# Every signal shim blocks and forwards: all but KILL/STOP (uncatchable), CHLD (shim
# reaps on it) and the synchronous fault signals shim leaves unblocked on purpose.
FAULTS = {signal.SIGFPE, signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT,
          signal.SIGTRAP, signal.SIGSYS}
FORWARDED = sorted(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
                   - FAULTS)

# The delegate blocks every forwarded signal and logs each one it receives, in order.
RECEIVER = """
import os, signal, sys
wanted = [int(x) for x in sys.argv[2].split(",")]
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
with open(sys.argv[1], "a") as log:
    log.write("ready\\n"); log.flush()
    for _ in wanted:
        log.write("%d\\n" % signal.sigwaitinfo(wanted).si_signo); log.flush()
"""


def test_every_catchable_signal_reaches_the_delegate_as_pid1(tmp_path):
    import sys

    require_tool("unshare")
    log = tmp_path / "got"
    log.write_text("")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc"] + shim_command() +
                            ["--", sys.executable, "-c", RECEIVER, str(log),
                             ",".join(str(int(s)) for s in FORWARDED)], env=base_env())
    try:
        assert wait_for(lambda: "ready" in log.read_text(), timeout=20)
        shim_pid = _child_of(proc.pid)
        for n, sig in enumerate(FORWARDED, 1):
            os.kill(shim_pid, sig)
            assert wait_for(lambda n=n: len(log.read_text().split()) > n, timeout=10), \
                f"signal {sig} never reached the delegate"
        assert proc.wait(timeout=20) == 0
        assert [int(x) for x in log.read_text().split()[1:]] == [int(s) for s in FORWARDED]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_some_codes_both_modes(mode):
    for code in (0, 1, 42, 255):
        assert run([mode, "--", "sh", "-c", f"exit {code}"]).returncode == code


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"])
def test_killed_by_signal_is_128_plus_n(sig):
    num = getattr(signal, "SIG" + sig)
    result = run(["--supervise", "--", "sh", "-c", f"kill -{sig} $$; sleep 5"])
    assert result.returncode == 128 + num


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"])
def test_signal_to_pid1_reaches_delegate(sig, tmp_path):
    """Signal shim as PID 1 from outside; the delegate dies of it; shim exits 128+n."""
    num = getattr(signal, "SIG" + sig)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc"] +
                            shim_command() +
                            ["--", "sh", "-c", f"touch {ready}; exec sleep 30"], env=base_env())

    assert wait_for(ready.exists)
    shim_pid = _child_of(proc.pid)

    os.kill(shim_pid, num)
    assert proc.wait(timeout=20) == 128 + num


def _child_of(pid):

    found = []

    def look():
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        found[:] = kids
        return bool(kids)
    assert wait_for(look)
    return int(found[0])


def test_delegate_that_traps_term_exits_0(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen(shim_command() + [
        "--supervise", "--", "sh", "-c", f"trap 'exit 0' TERM; touch {ready}; while :; do sleep 0.05; done"],
        env=base_env())

    assert wait_for(ready.exists)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_not_found_and_not_executable(tmp_path):
    r = run(["--", "no-such-command-xyz"])
    assert r.returncode == EXIT_NOT_FOUND
    assert r.stderr.decode().startswith("shim: exec no-such-command-xyz: ")
    f = tmp_path / "data"
    f.write_text("x")
    r = run(["--", str(f)])
    assert r.returncode == EXIT_NOT_EXECUTABLE
    assert b"Traceback" not in r.stderr


def test_usage_errors_are_one_line_and_125():
    for args in ([], ["--nope", "--", "true"], ["--grace", "soon", "--", "true"]):
        r = run(args)
        assert r.returncode == EXIT_USAGE, args
        first = r.stderr.decode().splitlines()[0]
        assert first.startswith("shim: ") and "; " in first
        assert b"Traceback" not in r.stderr


def test_exit_remap_and_on_error_continue(tmp_path):
    assert run(["--exit-remap", "143:0", "--", "sh", "-c", "kill -TERM $$"]).returncode == 0
    res = tmp_path / "r.json"
    r = run(["--on-error", "continue", "--result-file", str(res), "--", "sh", "-c", "exit 7"])
    assert r.returncode == 0
    record = json.loads(res.read_text())
    assert record["delegate_exit_code"] == 7 and record["exit_code"] == 0


def test_pid1_exit_codes():
    assert as_pid1(["--", "sh", "-c", "exit 42"]).returncode == 42
    assert as_pid1(["--", "sh", "-c", "kill -USR1 $$; sleep 3"]).returncode == 128 + signal.SIGUSR1
