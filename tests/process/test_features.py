"""Features that had no test (issue 7, item 4): shim check, SHIM_DEBUG and exit 119,
--log-level, --no-subreaper, SHIM_DELEGATE_EXIT_CODE, hook process-group draining,
exit 118, the termination message's second-level shrink, unsupported sections."""

import json
import os
import signal
import subprocess

import pytest

from shim.cli import CRASH_FOR_TESTS
from shim.config.table import UNSUPPORTED_SECTIONS
from shim.errors import EXIT_INTERNAL, EXIT_SETUP, EXIT_USAGE
from support import base_env, run, shim_command, wait_for


def _hook(directory, name, body):
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _stderr(r):
    text = r.stderr.decode()
    assert "Traceback" not in text, text
    return text


# -- shim check ---------------------------------------------------------------------------------
def test_check_accepts_a_good_config(tmp_path):
    cfg = tmp_path / "ok.json"
    cfg.write_text(json.dumps({"supervise": {"grace": "1s", "rewrite": {"TERM": "QUIT"}},
                               "profiles": {"k": {"steps": {"on_error": "continue"}}},
                               "profile": "k", "command": ["true"]}))
    r = run(["check", "--config", str(cfg)])
    assert r.returncode == 0 and r.stdout.decode() == f"{cfg}: ok\n" and r.stderr == b""


def test_check_lists_every_error_with_its_json_path(tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"supervise": {"grace": "soon", "bogus": 1},
                               "env": {"set": {"A": 1}}, "profiles": {"p": {"log_level": "loud"}}}))
    r = run(["check", "--config", str(cfg)])
    assert r.returncode == EXIT_USAGE and r.stdout == b""
    lines = _stderr(r).splitlines()
    assert len(lines) == 4
    for path in ("$.supervise.grace", "$.supervise.bogus", "$.env.set", "$.profiles.p.log_level"):
        assert any(path in line for line in lines), path
    assert all(line.startswith(f"shim: check {cfg} ") for line in lines)


# Every planned section is implemented now (UNSUPPORTED_SECTIONS is empty); a section this
# version does not know is refused the same way, from check and at run time, never ignored.
@pytest.mark.parametrize("section", list(UNSUPPORTED_SECTIONS) + ["tracing"])
def test_an_unknown_or_unsupported_section_is_an_error_from_check_and_at_run_time(section, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({section: {}}))
    expected = "not supported by this version" if section in UNSUPPORTED_SECTIONS else "unknown key"
    r = run(["check", "--config", str(cfg)])
    assert r.returncode == EXIT_USAGE and expected in _stderr(r)
    marker = tmp_path / "ran"
    r = run(["--config", str(cfg), "--", "touch", str(marker)])
    assert r.returncode == EXIT_USAGE and expected in _stderr(r)
    assert not marker.exists()


# -- exit 119 and SHIM_DEBUG ------------------------------------------------------------------------
def test_internal_error_is_one_line_and_119():
    name, value = CRASH_FOR_TESTS
    r = run(["--", "true"], env=base_env(**{name: value}))
    assert r.returncode == EXIT_INTERNAL
    err = _stderr(r)
    assert err.count("\n") == 1 and "internal error" in err and "SHIM_DEBUG=1" in err


def test_shim_debug_shows_the_traceback_and_keeps_119():
    name, value = CRASH_FOR_TESTS
    r = run(["--", "true"], env=base_env(SHIM_DEBUG="1", **{name: value}))
    assert r.returncode == EXIT_INTERNAL
    assert "Traceback (most recent call last)" in r.stderr.decode()


def test_the_crash_hook_needs_its_exact_value():
    r = run(["--", "true"], env=base_env(**{CRASH_FOR_TESTS[0]: "1"}))
    assert r.returncode == 0


# -- --log-level ------------------------------------------------------------------------------------
def test_log_level_debug_says_more_and_error_says_less(tmp_path):
    r = run(["--log-level", "debug", "--exec", "--", "true"])
    assert r.returncode == 0 and "shim: exec " in _stderr(r)
    assert run(["--exec", "--", "true"]).stderr == b""  # default warn: quiet
    _hook(tmp_path / "pre", "10-fail", "exit 3")
    warn = run(["--pre-hooks", str(tmp_path / "pre"), "--hook-failure", "warn", "--", "true"])
    assert warn.returncode == 0 and "10-fail" in _stderr(warn)
    quiet = run(["--log-level", "error", "--pre-hooks", str(tmp_path / "pre"),
                 "--hook-failure", "warn", "--", "true"])
    assert quiet.returncode == 0 and quiet.stderr == b""


# -- --no-subreaper ----------------------------------------------------------------------------------
def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("flag, reparented_to_shim", [("--subreaper", True),
                                                       ("--no-subreaper", False)])
def test_subreaper_flag_decides_where_orphans_go(flag, reparented_to_shim, tmp_path):
    pidfile, release = tmp_path / "orphan.pid", tmp_path / "release"
    proc = subprocess.Popen(shim_command() + ["--supervise", flag, "--grace", "500ms", "--",
                            "sh", "-c", f"(sleep 30 & echo $! > {pidfile}); "
                            f"while [ ! -e {release} ]; do sleep 0.02; done"], env=base_env())
    orphan = None
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        orphan = int(pidfile.read_text())
        assert wait_for(lambda: _ppid(orphan) != 0)
        assert (_ppid(orphan) == proc.pid) is reparented_to_shim
        release.write_text("")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        if orphan:
            try:
                os.kill(orphan, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- post-hook environment ----------------------------------------------------------------------------
def test_post_hooks_see_shim_and_delegate_exit_codes(tmp_path):
    log = tmp_path / "log"
    _hook(tmp_path / "post", "10-report",
          f"echo $SHIM_EXIT_CODE $SHIM_DELEGATE_EXIT_CODE $SHIM_REASON >> {log}")
    r = run(["--post-hooks", str(tmp_path / "post"), "--exit-remap", "7:0", "--",
             "sh", "-c", "exit 7"])
    assert r.returncode == 0
    assert log.read_text() == "0 7 exited\n"
    r = run(["--post-hooks", str(tmp_path / "post"), "--", "no-such-command-xyz"])
    assert r.returncode == 127
    # The delegate never ran: no SHIM_DELEGATE_EXIT_CODE at all.
    assert log.read_text().splitlines()[-1] == "127 not-found"


# -- hook process groups are drained ----------------------------------------------------------------
def test_a_post_hooks_background_process_is_drained(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    _hook(tmp_path / "post", "10-daemon", f"sleep 300 & echo $! > {pidfile}")
    r = run(["--post-hooks", str(tmp_path / "post"), "--grace", "300ms", "--", "true"])
    assert r.returncode == 0
    daemon = int(pidfile.read_text())
    alive = os.path.exists(f"/proc/{daemon}")
    if alive:
        os.kill(daemon, signal.SIGKILL)
    assert not alive, "the hook's background process outlived shim"


# -- exit 118 ---------------------------------------------------------------------------------------
def test_an_unreadable_hooks_directory_is_a_setup_error(tmp_path):
    r = run(["--pre-hooks", str(tmp_path / "missing"), "--", "true"])
    assert r.returncode == EXIT_SETUP
    err = _stderr(r)
    assert err.count("\n") == 1 and "read hooks" in err


def test_an_unwritable_result_file_after_success_is_a_warning(tmp_path):
    # Once the delegate ran, its code stands (issue 16): tests/process/test_write_failures.py
    r = run(["--result-file", str(tmp_path / "no-dir" / "r.json"), "--", "true"])
    assert r.returncode == 0 and "result file" in _stderr(r) and "exit code stays 0" in _stderr(r)


# -- termination message, second level -----------------------------------------------------------------
def test_termination_message_cuts_a_long_error_when_results_alone_do_not_fit(tmp_path):
    results, term = tmp_path / "results", tmp_path / "termination-log"
    results.mkdir()
    (results / "blob").write_text("x" * 5000)
    long_name = "/no-such-dir/" + "n" * 3900  # the error quotes it: too long even without results
    r = run(["--results-dir", str(results), "--termination-path", str(term), "--", long_name])
    assert r.returncode == 127
    data = term.read_bytes()
    assert len(data) <= 4096
    message = json.loads(data)
    assert message["results_truncated"] == 1
    assert message["results_file"] == str(term) + ".full.json"
    assert len(message["error"]) == 512
    full = json.loads((tmp_path / "termination-log.full.json").read_text())
    assert full["results"]["blob"] == "x" * 5000 and len(full["error"]) > 3900
