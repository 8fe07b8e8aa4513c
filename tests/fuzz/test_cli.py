"""Every subcommand's argv and every SHIM_* variable through the real CLI, with
stdout open, closed or full: one line on stderr, a documented exit code, never a
traceback or 119.  Real processes, so fewer examples than the in-process tests."""

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from shim.config import options
from strategies import HOSTILE
from support import REPO, shim_command

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
DOCUMENTED = {0, 115, 116, 117, 118, 120, 121, 122, 123, 124, 125, 126, 127, 141}

# No "/" in generated words: the delegate a fuzzed argv names can only be looked up in
# PATH (one directory holding `true`) or relative to an empty working directory.
safe_word = st.lists(st.sampled_from([h for h in HOSTILE if "/" not in h and "\x00" not in h]),
                     max_size=8).map("".join)
# Wait files would wait forever by design; they are fuzzed in-process.
RUN_FLAGS = sorted(f for f in options.BY_FLAG if f not in ("--wait-file",))
RUN_VARS = sorted(o.env for o in options.OPTIONS if o.name != "wait_file")

run_argv = st.lists(st.one_of(st.sampled_from(RUN_FLAGS), safe_word,
                              st.builds("{}={}".format, st.sampled_from(RUN_FLAGS), safe_word)),
                    max_size=8)
SUBCOMMANDS = {
    "version": ["--short", "--no-short", "--x", "-h"],
    "check": ["--config", "--profile", "--schema", "--no-schema", "-h"],
    "install": ["--versioned", "--arch", "--from", "--list", "--", "-h", "all", "amd64"],
}
sub_argv = st.sampled_from(sorted(SUBCOMMANDS)).flatmap(
    lambda name: st.lists(st.one_of(st.sampled_from(SUBCOMMANDS[name]), safe_word),
                          max_size=5).map(lambda rest: [name] + rest))
stdout_kinds = st.sampled_from(["pipe", "closed", "full"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-cli")
    (root / "bin").mkdir()
    os.symlink("/bin/true", root / "bin" / "true")
    (root / "cwd").mkdir()
    return root


def _run(sandbox, argv, environ, stdout_kind):
    env = {"PATH": str(sandbox / "bin"), "SHIM_WAIT_TIMEOUT": "1s", "SHIM_TIMEOUT": "20s",
           "SHIM_GRACE": "1s"}
    if not os.environ.get("SHIM_BIN"):
        env["PYTHONPATH"] = str(REPO)
    env.update(environ)
    stdout = {"pipe": subprocess.PIPE, "full": open("/dev/full", "wb")}.get(stdout_kind)
    kw = {} if stdout_kind != "closed" else {"pass_fds": (), "stdout": None}
    cmd = shim_command() + argv
    if stdout_kind == "closed":
        cmd = ["/bin/sh", "-c", 'exec "$@" >&-', "sh"] + cmd
    try:
        r = subprocess.run(cmd, env=env, cwd=sandbox / "cwd", stdin=subprocess.DEVNULL,
                           stdout=kw.get("stdout", stdout), stderr=subprocess.PIPE, timeout=60)
    finally:
        if stdout_kind == "full":
            stdout.close()
    return r


def _check(r, delegate_may_run):
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert r.returncode != 119, err
    for line in err.splitlines():
        # shim's lines, and the usage it adds after "no command given"
        assert line.startswith(("shim: ", "usage: ", "       shim ")), err
    if not delegate_may_run:
        assert r.returncode in DOCUMENTED, (r.returncode, err)
    if r.returncode in DOCUMENTED - {0, 141} and r.returncode < 128 and not delegate_may_run:
        assert err.count("\n") >= 1


@settings(max_examples=40 * SCALE)
@given(run_argv, st.dictionaries(st.sampled_from(RUN_VARS), safe_word, max_size=4), stdout_kinds)
def test_run_argv_and_variables(sandbox, argv, environ, stdout_kind):
    r = _run(sandbox, argv + ["--", "true"], environ, stdout_kind)
    # --exit-remap can turn the delegate's 0 into any code; stderr then stays shim's own.
    _check(r, delegate_may_run=True)


@settings(max_examples=40 * SCALE)
@given(sub_argv, st.dictionaries(st.sampled_from(RUN_VARS + [
    "SHIM_INSTALL_DIR", "SHIM_INSTALL_ARCH", "SHIM_INSTALL_FROM", "SHIM_INSTALL_LIST",
    "SHIM_INSTALL_VERSIONED"]), safe_word, max_size=3), stdout_kinds)
def test_subcommand_argv_and_variables(sandbox, argv, environ, stdout_kind):
    r = _run(sandbox, argv, environ, stdout_kind)
    _check(r, delegate_may_run=False)
    if r.returncode != 0 and argv[0] in ("version", "install") and r.returncode != 141:
        assert r.stderr.count(b"\n") == 1, r.stderr  # one failure, one line
    if stdout_kind != "pipe" and r.returncode == 0:
        # Nothing to print (install into a fresh dir prints; --list of nothing does not).
        assert argv[0] == "install"


def test_the_sandbox_really_runs_true(sandbox):
    assert _run(sandbox, ["--", "true"], {}, "pipe").returncode == 0
    assert sys.executable
