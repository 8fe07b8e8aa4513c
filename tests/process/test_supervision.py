"""PID-1 hygiene: reaping, signal masks, environment, stdio, exec mode, drain."""

import json
import os
import signal
import subprocess

from support import as_pid1, base_env, run, shim_command, wait_for


def _status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split()[1]
    raise AssertionError(field)


def test_delegate_signal_state_is_clean_in_both_modes():
    for mode in ("--exec", "--supervise"):
        out = run([mode, "--", "cat", "/proc/self/status"]).stdout.decode()
        assert int(_status_field(out, "SigBlk"), 16) == 0, mode
        assert int(_status_field(out, "SigIgn"), 16) == 0, mode
    out = as_pid1(["--", "cat", "/proc/self/status"]).stdout.decode()
    assert int(_status_field(out, "SigBlk"), 16) == 0
    assert int(_status_field(out, "SigIgn"), 16) == 0


def test_inherited_ignored_signal_stays_ignored():
    # What shim inherited is what the delegate gets (here: SIGHUP ignored, like nohup).
    proc = subprocess.run(["sh", "-c", "trap '' HUP; exec " + " ".join(shim_command()) +
                           " --supervise -- cat /proc/self/status"], env=base_env(),
                          capture_output=True, text=True)
    assert int(_status_field(proc.stdout, "SigIgn"), 16) == 1 << (signal.SIGHUP - 1)


def test_delegate_env_is_exactly_inherited_plus_configured():
    env = base_env(FOO="bar", SHIM_GRACE="2s")
    for mode in ("--exec", "--supervise"):
        out = run([mode, "-e", "ADDED=1", "--unset-env", "FOO", "--", "env", "-0"], env=env).stdout
        got = dict(item.split("=", 1) for item in out.decode().split("\0") if item)
        # Plus SHIM_RUNTIME, which shim always exports (issue 10): what `shim detect` decides.
        runtime = json.loads(run(["detect"], env=env).stdout)["runtime"]
        want = dict(env, ADDED="1", SHIM_RUNTIME=runtime)
        del want["FOO"]
        assert got == want, mode


def test_1000_orphans_leave_no_zombies():
    script = ("i=0; while [ $i -lt 1000 ]; do (sleep 0.01 &) ; i=$((i+1)); done; sleep 0.5; "
              "ps -eo stat= | grep -c '^Z' || true")
    r = as_pid1(["--", "sh", "-c", script], timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split()[-1] == "0"


def test_orphans_reaped_as_subreaper(tmp_path):
    """Not PID 1: shim becomes a subreaper, so a double-forked orphan re-parents to it."""
    pidfile = tmp_path / "orphan.pid"
    proc = subprocess.Popen(shim_command() + ["--supervise", "--grace", "1s", "--", "sh", "-c",
                            f"(sleep 30 & echo $! > {pidfile}); sleep 0.3"], env=base_env())
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    orphan = int(pidfile.read_text())
    with open(f"/proc/{orphan}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid == proc.pid  # re-parented to shim, not to init
    assert proc.wait(timeout=20) == 0
    assert not os.path.exists(f"/proc/{orphan}")  # drained: TERM after the delegate exited


def test_drain_kills_descendants_that_ignore_term(tmp_path):
    """Not PID 1 of a namespace (whose exit would kill them anyway): as a subreaper,
    shim must TERM, wait the grace, KILL and reap the descendants before it exits."""
    pidfile = tmp_path / "stubborn.pid"
    proc = subprocess.Popen(shim_command() + [
        "--supervise", "--grace", "300ms", "--", "sh", "-c",
        f"(trap '' TERM; exec sleep 60) & echo $! > {pidfile}; sleep 0.2; exit 3"],
        env=base_env())
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    stubborn = int(pidfile.read_text())
    try:
        assert proc.wait(timeout=30) == 3
        # Gone the moment shim is: killed and reaped by shim, not left to init.
        assert not os.path.exists(f"/proc/{stubborn}"), "a descendant outlived shim"
    finally:
        try:
            os.kill(stubborn, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_stdio_passthrough():
    r = subprocess.run(shim_command() + ["--supervise", "--", "sh", "-c",
                                         "read line; echo out:$line; echo err:$line >&2"],
                       input=b"hello\n", env=base_env(), capture_output=True, timeout=30)
    assert r.stdout == b"out:hello\n" and r.stderr == b"err:hello\n"


def test_64_mib_of_output_is_byte_exact():
    size = 64 << 20
    r = subprocess.run(shim_command() + ["--supervise", "--", "head", "-c", str(size), "/dev/urandom"],
                       env=base_env(), capture_output=True, timeout=120)
    assert len(r.stdout) == size
    # pipe it again through shim and compare bytes exactly
    r2 = subprocess.run(shim_command() + ["--supervise", "--", "cat"], input=r.stdout,
                        env=base_env(), capture_output=True, timeout=120)
    assert r2.stdout == r.stdout


def test_exec_mode_keeps_the_pid():
    r = subprocess.run(["sh", "-c", "echo $$; exec " + " ".join(shim_command()) +
                        " -- sh -c 'echo $$'"], env=base_env(), capture_output=True, text=True)
    first, second = r.stdout.split()
    assert first == second


def test_supervise_mode_is_one_process_between(tmp_path):
    r = run(["--supervise", "--", "sh", "-c", "cat /proc/$PPID/comm; echo $PPID"])
    out = r.stdout.decode().split()
    assert out[0] != "sh"


def test_signal_group_reaches_grandchildren(tmp_path):
    marker = tmp_path / "grandchild-got-term"
    ready = tmp_path / "ready"
    script = (f"sh -c 'trap \"touch {marker}; exit 0\" TERM; touch {ready}; "
              "while :; do sleep 0.05; done' & wait")
    proc = subprocess.Popen(shim_command() + ["--signal-group", "--grace", "2s", "--", "sh", "-c",
                                              script], env=base_env())
    assert wait_for(ready.exists)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert marker.exists()


def test_rewrite_term_to_usr1(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen(shim_command() + ["--rewrite", "TERM:USR1", "--", "sh", "-c",
                            f"trap 'exit 10' USR1; trap 'exit 20' TERM; touch {ready}; "
                            "while :; do sleep 0.05; done"], env=base_env())
    assert wait_for(ready.exists)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 10
