"""Tekton-style steps: wait/post/cancel files, skip propagation, timeout, hooks, results."""

import json
import os
import selectors
import subprocess
import time

from shim.errors import EXIT_CANCELLED, EXIT_HOOK_FAILED, EXIT_SKIPPED, EXIT_TIMEOUT, EXIT_WAIT_TIMEOUT
from shim.util.platforms import running_arch
from support import base_env, run, shim_command, wait_for


def _start(args, **kw):
    return subprocess.Popen(shim_command() + args, env=base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def _await_stderr(proc, text, timeout=20):
    """Read proc's stderr until it contains `text` (an event shim reports), not a sleep."""
    fd, seen = proc.stderr.fileno(), b""
    end = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while text.encode() not in seen:
            if time.monotonic() >= end or not sel.select(end - time.monotonic()):
                raise AssertionError(f"no {text!r} on shim's stderr in {timeout}s; saw {seen!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"shim's stderr ended without {text!r}; saw {seen!r}")
            seen += chunk
    return seen


def _await_file(path, timeout=20):
    assert wait_for(path.exists, timeout), f"{path} never appeared"


def test_wait_file_hand_off_is_fast(tmp_path):
    """The delegate starts within milliseconds of the wait file appearing (inotify)."""
    wait, out = tmp_path / "go", tmp_path / "started"
    proc = _start(["--log-level", "info", "--wait-file", str(wait), "--", "sh", "-c",
                   f"date +%s.%N > {out}"])
    _await_stderr(proc, f"wait for file {wait}")  # shim is watching
    assert not out.exists()  # still waiting
    t0 = time.time()
    wait.write_text("")
    assert proc.wait(timeout=20) == 0
    latency = float(out.read_text()) - t0
    assert latency < 0.5, latency  # generous bound; scripts/bench measures the real figure


def test_several_wait_files_in_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    proc = _start(["--log-level", "info", "--wait-file", str(a), "--wait-file", str(b), "--", "true"])
    a.write_text("")
    _await_stderr(proc, f"wait for file {b}")  # a is done; b is what it waits for now
    assert proc.poll() is None
    b.write_text("")
    assert proc.wait(timeout=20) == 0


def test_wait_timeout(tmp_path):
    r = run(["--wait-file", str(tmp_path / "never"), "--wait-timeout", "200ms", "--", "true"])
    assert r.returncode == EXIT_WAIT_TIMEOUT
    assert b"wait for" in r.stderr


def test_skip_propagation(tmp_path):
    """PATH.err upstream: skip without running, exit 121, and write our own .err post file."""
    wait, post, ran = tmp_path / "step0", tmp_path / "step1", tmp_path / "ran"
    (tmp_path / "step0.err").write_text("")
    r = run(["--wait-file", str(wait), "--post-file", str(post), "--result-file",
             str(tmp_path / "r.json"), "--", "touch", str(ran)])
    assert r.returncode == EXIT_SKIPPED
    assert not ran.exists()
    assert (tmp_path / "step1.err").exists() and not post.exists()
    assert json.loads((tmp_path / "r.json").read_text())["reason"] == "skipped"


def test_post_file_after_success_and_failure(tmp_path):
    ok, bad = tmp_path / "ok", tmp_path / "bad"
    assert run(["--post-file", str(ok), "--", "true"]).returncode == 0
    assert ok.exists() and not (tmp_path / "ok.err").exists()
    assert run(["--post-file", str(bad), "--", "false"]).returncode == 1
    assert (tmp_path / "bad.err").exists() and not bad.exists()


def test_chain_of_steps(tmp_path):
    """Three shims hand off through post files like Tekton steps."""
    procs = []
    for i in range(3):
        args = ["--post-file", str(tmp_path / f"s{i}")]
        if i:
            args += ["--wait-file", str(tmp_path / f"s{i - 1}")]
        procs.append(_start(args + ["--", "sh", "-c", f"echo {i} >> {tmp_path / 'order'}"]))
    assert [p.wait(timeout=30) for p in procs] == [0, 0, 0]
    assert (tmp_path / "order").read_text().split() == ["0", "1", "2"]


def test_cancel_file(tmp_path):
    cancel, res = tmp_path / "cancel", tmp_path / "r.json"
    started = tmp_path / "started"
    proc = _start(["--cancel-file", str(cancel), "--result-file", str(res), "--grace", "2s",
                   "--", "sh", "-c", f"touch {started}; exec sleep 30"])
    _await_file(started)  # the delegate runs: the cancel file now cancels it
    cancel.write_text("")
    assert proc.wait(timeout=20) == EXIT_CANCELLED
    record = json.loads(res.read_text())
    assert record["reason"] == "cancelled" and record["signal"] == "SIGTERM"


def test_timeout_terms_then_kills(tmp_path):
    res = tmp_path / "r.json"
    t0 = time.monotonic()
    r = run(["--timeout", "300ms", "--grace", "300ms", "--result-file", str(res), "--",
             "sh", "-c", "trap '' TERM; sleep 30"])
    assert r.returncode == EXIT_TIMEOUT
    assert time.monotonic() - t0 < 10
    record = json.loads(res.read_text())
    assert record["reason"] == "timeout" and record["signal"] == "SIGKILL"


def test_result_record_and_termination_message(tmp_path):
    results, res, term = tmp_path / "results", tmp_path / "r.json", tmp_path / "termination-log"
    results.mkdir()
    r = run(["--results-dir", str(results), "--result-file", str(res), "--termination-path",
             str(term), "--", "sh", "-c", f"printf abc > {results}/digest; exit 3"])
    assert r.returncode == 3
    record = json.loads(res.read_text())
    assert record["exit_code"] == 3 and record["reason"] == "exited"
    assert record["results"] == {"digest": "abc"}
    assert set(record["phases_ms"]) >= {"config", "pre_hooks", "wait", "delegate", "post_hooks"}
    assert json.loads(term.read_text())["results"] == {"digest": "abc"}
    # a large result spills: the termination message stays within 4096 bytes
    big = tmp_path / "big"
    big.mkdir()
    run(["--results-dir", str(big), "--termination-path", str(term), "--", "sh", "-c",
         f"head -c 10000 /dev/zero | tr '\\0' x > {big}/blob"])
    assert len(term.read_bytes()) <= 4096
    spill = json.loads(term.read_text())["results_file"]
    assert len(json.loads(open(spill).read())["results"]["blob"]) == 10000


def _hook(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_hooks_run_in_name_order_whatever_the_directory_order(tmp_path):
    pre, post, log = tmp_path / "pre", tmp_path / "post", tmp_path / "log"
    pre.mkdir()
    post.mkdir()
    names = [f"{i:02d}-hook" for i in range(24)]
    for name in reversed(names):  # created last-first
        _hook(pre, name, f"echo pre {name} >> {log}")
        _hook(post, name, f"echo post {name} $SHIM_DELEGATE_EXIT_CODE >> {log}")
    # The check means something only if the directory does not list them sorted already.
    assert os.listdir(pre) != names
    r = run(["--pre-hooks", str(pre), "--post-hooks", str(post), "--", "sh", "-c", "exit 5"])
    assert r.returncode == 5
    assert log.read_text().splitlines() == \
        [f"pre {n}" for n in names] + [f"post {n} 5" for n in names]


def test_hooks_run_in_order_with_env_and_exit_code(tmp_path):
    pre, post, log = tmp_path / "pre", tmp_path / "post", tmp_path / "log"
    pre.mkdir()
    post.mkdir()
    _hook(pre, "20-second", f"echo pre2 $GREETING >> {log}")
    _hook(pre, "10-first", f"echo pre1 >> {log}; echo to-stdout")
    (pre / "30-not-executable").write_text("echo never")
    _hook(post, "10-report", f"echo post $SHIM_EXIT_CODE $SHIM_REASON >> {log}")
    r = run(["--pre-hooks", str(pre), "--post-hooks", str(post), "-e", "GREETING=hi", "--",
             "sh", "-c", f"echo delegate >> {log}; exit 4"])
    assert r.returncode == 4
    assert log.read_text().splitlines() == ["pre1", "pre2 hi", "delegate", "post 4 exited"]
    assert r.stdout == b""  # a hook's stdout goes to stderr: the delegate's stdout is its own
    assert b"to-stdout" in r.stderr


def test_failing_pre_hook_aborts_or_warns(tmp_path):
    pre, ran = tmp_path / "pre", tmp_path / "ran"
    pre.mkdir()
    _hook(pre, "10-fail", "exit 9")
    r = run(["--pre-hooks", str(pre), "--", "touch", str(ran)])
    assert r.returncode == EXIT_HOOK_FAILED and not ran.exists()
    assert b"10-fail" in r.stderr
    r = run(["--pre-hooks", str(pre), "--hook-failure", "warn", "--", "touch", str(ran)])
    assert r.returncode == 0 and ran.exists()


def test_hook_timeout(tmp_path):
    pre = tmp_path / "pre"
    pre.mkdir()
    _hook(pre, "10-slow", "sleep 30")
    t0 = time.monotonic()
    r = run(["--pre-hooks", str(pre), "--hook-timeout", "200ms", "--grace", "200ms", "--", "true"])
    assert r.returncode == EXIT_HOOK_FAILED
    assert time.monotonic() - t0 < 10


def test_sigterm_while_waiting_stops_promptly(tmp_path):
    never = tmp_path / "never"
    proc = _start(["--log-level", "info", "--wait-file", str(never), "--", "true"])
    _await_stderr(proc, f"wait for file {never}")  # in the wait, not before it
    proc.terminate()
    assert proc.wait(timeout=5) == 143


def test_env_file_and_entrypoint_variable(tmp_path):
    envf = tmp_path / "app.env"
    envf.write_text("GREETING=hello\nTARGET=\"${USER_NAME:-world}\"\n")
    env = base_env(SHIM_ENTRYPOINT="sh -c 'echo $GREETING $TARGET'", SHIM_ENV_FILE=str(envf))
    r = subprocess.run(shim_command(), env=env, capture_output=True, timeout=30)
    assert r.stdout == b"hello world\n"


def test_image_entrypoint_and_config_file(tmp_path):
    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps({"image_entrypoint": {"linux/amd64": {"Entrypoint": ["echo", "amd"]},
                                                   "linux/arm64": {"Entrypoint": ["echo", "arm"]}},
                               "env": {"set": {"X": "1"}}}))
    r = run(["--config", str(cfg)])
    # The running arch's entry, and only that one.
    assert r.stdout.strip() == {"amd64": b"amd", "arm64": b"arm"}[running_arch()]


def test_first_error_survives_a_failing_result_write(tmp_path):
    """Command not found, and the result file cannot be written: exit 127, both said."""
    r = run(["--result-file", str(tmp_path / "no-such-dir" / "r.json"), "--", "no-such-cmd-xyz"])
    assert r.returncode == 127
    err = r.stderr.decode()
    assert "no-such-cmd-xyz" in err and "result file" in err
    assert "Traceback" not in err
