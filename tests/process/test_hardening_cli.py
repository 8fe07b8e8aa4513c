"""Issue 8, CLI side: what a hostile user does from a shell, with real processes.

Closed and full stdout/stderr for every subcommand, the real environment block,
NUL bytes through the whole run (also --supervise), an empty command name, and
install as an unprivileged user.  Each asserts one line on stderr, a documented
exit code and no traceback.
"""

import json
import os
import subprocess

import pytest

from shim.errors import EXIT_SETUP, EXIT_USAGE
from support import REPO, base_env, require_tool, run, shim_command

# Every code the README documents for shim's own outcomes (plus 141: stdout's reader gone).
DOCUMENTED = {0, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 141}


def sh(script, env=None, timeout=60):
    """Run a shell line with $SHIM set to the shim under test."""
    shim = " ".join(shim_command())
    return subprocess.run(["sh", "-c", script], env=dict(env or base_env(), SHIM=shim),
                          capture_output=True, timeout=timeout)


def one_line(stderr):
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    assert text.count("\n") == 1 and text.startswith("shim: "), text
    return text


OUTPUT_COMMANDS = ["version", "version --short", "--version", "--help", "check", "check --schema",
                   "check --help", "install --help", "install --list LISTDIR"]


@pytest.fixture
def listdir(tmp_path):
    (tmp_path / "pvc" / "1.0-abc").mkdir(parents=True)
    (tmp_path / "pvc" / "1.0-abc" / "shim").write_bytes(b"x")
    return str(tmp_path / "pvc")


@pytest.mark.parametrize("cmd", OUTPUT_COMMANDS)
def test_full_stdout_is_a_one_line_error(cmd, listdir):
    require_tool("sh")
    if not os.path.exists("/dev/full"):
        pytest.fail("/dev/full is missing")
    r = sh(f"$SHIM {cmd.replace('LISTDIR', listdir)} >/dev/full")
    assert r.returncode == EXIT_SETUP, r
    assert "no space left on device" in one_line(r.stderr)


@pytest.mark.parametrize("cmd", OUTPUT_COMMANDS)
def test_closed_stdout_is_a_one_line_error(cmd, listdir):
    r = sh(f"$SHIM {cmd.replace('LISTDIR', listdir)} >&-")
    assert r.returncode == EXIT_SETUP, r
    assert "stdout is closed" in one_line(r.stderr)


@pytest.mark.parametrize("cmd", OUTPUT_COMMANDS)
def test_a_vanished_reader_ends_quietly_with_141(cmd, listdir):
    # The reader exits before shim writes: EPIPE, as `shim version | false` can give.
    cmd = cmd.replace("LISTDIR", listdir)
    r = sh(f"exec 3>&1; {{ sleep 0.3; $SHIM {cmd}; echo $? >&3; }} | true")
    assert r.stdout.split() == [b"141"], r
    assert r.stderr == b""


@pytest.mark.parametrize("args", [["--bogus"], ["check", "--bogus"], ["install", "--bogus"],
                                  ["version", "--bogus"], ["--", ""]])
def test_closed_stderr_keeps_the_exit_code(args):
    r = sh("$SHIM " + " ".join(f"'{a}'" for a in args) + " 2>&-")
    assert r.returncode == EXIT_USAGE, r


def test_closed_stdout_and_stderr_still_125():
    assert sh("$SHIM --bogus >&- 2>&-").returncode == EXIT_USAGE


def test_the_delegate_gets_the_environment_shim_was_started_with():
    # CPython's locale coercion would add LC_CTYPE=C.UTF-8 to os.environ.
    env = {"PATH": "/usr/bin:/bin"}
    if not os.environ.get("SHIM_BIN"):
        env["PYTHONPATH"] = str(REPO)
    for mode in ("--exec", "--supervise"):
        r = subprocess.run(["env", "-i"] + [f"{k}={v}" for k, v in env.items()] +
                           shim_command() + [mode, "--", "env"], capture_output=True, timeout=60)
        assert r.returncode == 0, r
        got = dict(line.split("=", 1) for line in r.stdout.decode().splitlines())
        got.pop("SHIM_RUNTIME", None)  # what shim adds on purpose (README, Platforms)
        assert got == env, (mode, got)


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_nul_in_an_env_file_runs_nothing_and_writes_no_false_record(mode, tmp_path):
    env_file = tmp_path / "a.env"
    env_file.write_bytes(b"A=a\0b\n")
    record = tmp_path / "r.json"
    extra = ["--result-file", str(record)] if mode == "--supervise" else []
    marker = tmp_path / "ran"
    r = run([mode, "--env-file", str(env_file)] + extra + ["--", "touch", str(marker)])
    assert r.returncode == EXIT_USAGE, r
    assert "line 1" in one_line(r.stderr) and "NUL" in r.stderr.decode()
    assert not marker.exists()
    if record.exists():  # a record may say what failed, never that the delegate ran
        data = json.loads(record.read_text())
        assert data["reason"] == "usage" and data["delegate_exit_code"] is None


@pytest.mark.parametrize("args", [["--image-entrypoint", '["a\\u0000b"]'],
                                  ["--image-entrypoint", '{"Entrypoint": ["x"], "Cmd": ["\\u0000"]}']])
def test_nul_in_the_image_entrypoint_is_a_usage_error(args):
    for mode in ("--exec", "--supervise"):
        r = run([mode] + args)
        assert r.returncode == EXIT_USAGE and "NUL" in one_line(r.stderr)


def test_nul_in_the_config_command_is_a_usage_error(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"command": ["echo", "a\\u0000"]}')
    r = run(["--supervise", "--config", str(cfg)])
    assert r.returncode == EXIT_USAGE and "NUL" in one_line(r.stderr)


@pytest.mark.parametrize("source", ["flag", "env", "file", "check"])
def test_non_ascii_digit_signal_is_a_usage_error_from_every_source(source, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"supervise": {"rewrite": {"²": "TERM"}}}')
    argv, env = {"flag": (["--rewrite", "²:TERM", "--", "true"], {}),
                 "env": (["--", "true"], {"SHIM_REWRITE": "²:TERM"}),
                 "file": (["--config", str(cfg), "--", "true"], {}),
                 "check": (["check", "--config", str(cfg)], {})}[source]
    r = run(argv, env=base_env(**env))
    assert r.returncode == EXIT_USAGE, r
    one_line(r.stderr)


def test_an_empty_command_name_is_a_usage_error():
    r = run(["--", ""])
    assert r.returncode == EXIT_USAGE and "command name is empty" in one_line(r.stderr)


def test_a_megabyte_unterminated_value_fails_with_a_clear_error(tmp_path):
    env_file = tmp_path / "big.env"
    env_file.write_text('A="' + "x" * (1 << 20))
    r = run(["--env-file", str(env_file), "--", "true"], timeout=60)
    assert r.returncode == EXIT_USAGE and "unterminated" in one_line(r.stderr)
    # One variable holds at most 128 KiB (MAX_ARG_STRLEN).
    r = run([], env=base_env(SHIM_ENTRYPOINT='"' + "y" * 100_000), timeout=60)
    assert r.returncode == EXIT_USAGE and "no closing" in one_line(r.stderr)


@pytest.mark.parametrize("ref, cause", [
    ("ref+http://127.0.0.1:0/x", "port 0 is out of range"),  # used to connect to port 80
    ("ref+https://[::1", "has no closing ']'"),  # used to exit 117 with a ValueError text
    ("ref+https://127.0.0.1:99999/x", "port 99999 is out of range"),
    ("ref+http://127.0.0.1:x/", 'port "x" is not a number'),
    ("ref+vault://kv/a?version=abc", "?version= must be a whole number"),
    ("ref+vault://kv/a?address=http://127.0.0.1:0", "malformed ?address="),
    ("ref+vault://secret/app#/password#/x", "a second '#' in the fragment #/password#/x"),
])
def test_malformed_references_are_usage_errors_before_any_request(ref, cause):
    r = run(["--secret", f"X={ref}", "--", "true"], env=base_env(VAULT_ADDR="http://127.0.0.1:9",
                                                                 VAULT_TOKEN="t"))
    line = one_line(r.stderr)
    assert r.returncode == EXIT_USAGE, line
    assert cause in line and "ValueError" not in line and "cast" not in line


def test_check_reports_every_error_from_the_cli():
    r = run(["check"], env=base_env(SHIM_ENV="{", SHIM_TIMEOUT="x"))
    assert r.returncode == EXIT_USAGE
    err = r.stderr.decode()
    assert "SHIM_ENV" in err and "SHIM_TIMEOUT" in err and err.count("\n") == 2


def test_wait_timeout_zero_waits(tmp_path):
    # 0 means "no timeout": the file appears later and the delegate runs.
    target = tmp_path / "ready"
    proc = subprocess.Popen(shim_command() + ["--wait-timeout", "0", "--wait-file", str(target),
                                              "--", "true"], env=base_env(),
                            stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
        target.write_text("")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_prepend_to_unset_path_still_finds_commands():
    env = {"PYTHONPATH": str(REPO)} if not os.environ.get("SHIM_BIN") else {}
    for mode in ("--exec", "--supervise"):
        r = subprocess.run(["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + shim_command() +
                           [mode, "--prepend-env", "PATH=/opt/none", "--", "sh", "-c",
                            'echo "$PATH"'], capture_output=True, timeout=60)
        assert r.returncode == 0, r
        assert r.stdout.decode().strip().startswith("/opt/none:/usr/local/sbin:")


@pytest.fixture
def nobody_dir():
    """A directory user nobody can reach (pytest's tmp_path is under a 0700 directory)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="shim-nobody-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield __import__("pathlib").Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- install -----------------------------------------------------------------------------------
def test_install_from_a_text_file_is_refused(tmp_path):
    r = run(["install", "--from", "/etc/passwd", str(tmp_path / "d")])
    assert r.returncode == EXIT_USAGE and "not an ELF executable" in one_line(r.stderr)
    assert not (tmp_path / "d").exists()


def test_install_list_as_a_user_who_cannot_read_one_version(nobody_dir):
    setpriv = require_tool("setpriv")
    top = nobody_dir / "pvc"
    for name, mode in (("1.0-a", 0o755), ("1.1-b", 0o700), ("1.2-c", 0o755)):
        (top / name).mkdir(parents=True)
        (top / name / "shim").write_bytes(b"x")
        (top / name).chmod(mode)
    top.chmod(0o755)
    env = base_env()
    if not os.environ.get("SHIM_BIN"):
        # the source tree must be readable by nobody too
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] +
                       shim_command() + ["install", "--list", str(top)], env=env,
                       capture_output=True, timeout=60, cwd="/")
    assert r.returncode == EXIT_SETUP, r
    assert r.stdout.decode().split("\n") == ["1.0-a shim", "1.2-c shim", ""]
    assert "1.1-b: permission denied" in one_line(r.stderr)


def test_documented_codes_only():
    assert EXIT_SETUP in DOCUMENTED and EXIT_USAGE in DOCUMENTED


def test_sigterm_while_a_big_env_file_is_parsed_stops_it(tmp_path):
    """Signals are blocked from the start, so reading env files must look for a stop signal
    itself.  A FIFO as the first env file proves shim is past the block when the test
    writes it; the big file after it would end in a usage error (its last line is bad)
    if shim parsed it to the end instead of stopping."""
    import signal as signal_module

    fifo = tmp_path / "gate.env"
    os.mkfifo(fifo)
    big = tmp_path / "big.env"
    big.write_text("A=1\n" * (1 << 20) + "not a valid line\n")  # 4 MiB, about 2 s to parse
    proc = subprocess.Popen(shim_command() + ["--env-file", str(fifo), "--env-file", str(big),
                                              "--", "true"], env=base_env(), stderr=subprocess.PIPE)
    try:
        with open(fifo, "w") as gate:  # blocks until shim opens it: signals are blocked by then
            gate.write("GATE=1\n")
        proc.send_signal(signal_module.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal_module.SIGTERM, err
    assert b"signal SIGTERM arrived first" in err and b"not a valid line" not in err


def test_env_from_dotenv_expands_like_env_file(tmp_path):
    # The same dotenv text gives the same variables through --env-file and --env-from:
    # ${VAR} sees the environment built so far, not an empty one.
    env_file = tmp_path / "app.env"
    env_file.write_text('A=ab${HOME}\nB="${A}-${UNSET:-dflt}"\nC=\'${HOME}\'\n')
    show = ["sh", "-c", 'printf "%s|%s|%s" "$A" "$B" "$C"']
    by_file = run(["--env-file", str(env_file), "--"] + show)
    by_ref = run(["--no-mask-secrets", "--env-from", f"ref+file://{env_file}", "--"] + show)
    assert by_file.returncode == by_ref.returncode == 0, by_ref.stderr
    assert by_file.stdout == by_ref.stdout == b"ab/root|ab/root-dflt|${HOME}"


@pytest.mark.parametrize("extra", [
    {"SHIM_SECRET": "X=ref+foo://bar"},
    {"SHIM_SECRET": "X=ref+vault://kv/a?regoin=1"},
    {"SHIM_LOG_SINK": "ftp://x"},
    {"SHIM_STDIN_FROM": "http://x"},
    {"SHIM_HEARTBEAT": "ftp://x"},
    {"SHIM_MODE": "exec", "SHIM_TIMEOUT": "5"},
    {"SHIM_USER": "no-such-user-16"},
    {"SHIM_WAIT_FOR": "tcp://h:x"},
    {"SHIM_TEMPLATE": "/nonexistent/t.tmpl=/tmp/never-written"},
    {"SHIM_SECRET": "X=ref+vault://kv/a", "VAULT_ADDR": "http://127.0.0.1:0", "VAULT_TOKEN": "t"},
    {"SHIM_REPORT": "ftp://x/y"},
    {"SHIM_REFRESH": "1ms"},
])
def test_check_refuses_what_a_run_refuses(extra):
    # Parity, with real processes: the run says 125 (nothing started), so must `shim check`.
    ran = run(["--", "true"], env=base_env(**extra))
    checked = run(["check"], env=base_env(**extra))
    assert ran.returncode == EXIT_USAGE, ran.stderr
    assert checked.returncode == EXIT_USAGE and b": ok" not in checked.stdout
    assert one_line(ran.stderr).split(": ", 2)[2] == one_line(checked.stderr).split(": ", 2)[2]


def _address_options():
    """Every option that takes a URL or an address, from the option table (a new one is
    covered without editing this test)."""
    from shim.config import options
    return [o for o in options.OPTIONS
            if any(word in (o.metavar or "") for word in ("URL", "ADDR", "HOST"))]


@pytest.mark.parametrize("opt", _address_options(), ids=lambda o: o.env)
@pytest.mark.parametrize("value", ["ftp://x", "tcp://h:x", "http://[::1", "http://127.0.0.1:0/x"])
def test_every_address_option_check_and_run_agree(opt, value):
    extra = {opt.env: value}
    if opt.name == "statsd_listen":  # the listener is read only with a gateway
        extra["SHIM_STATSD_GATEWAY"] = "127.0.0.1:8125"
    ran = run(["--", "true"], env=base_env(**extra))
    checked = run(["check"], env=base_env(**extra))
    if ran.returncode == EXIT_USAGE:
        assert checked.returncode == EXIT_USAGE, (opt.env, value, ran.stderr, checked.stdout)
        line = one_line(ran.stderr)
        assert "cast" not in line and "Invalid IPv6" not in line and "ValueError" not in line
    else:  # accepted by the run: check must not refuse it either
        assert checked.returncode == 0, (opt.env, value, checked.stderr)
    if value.startswith("http"):  # a URL no request can go to is refused before the start
        assert ran.returncode == EXIT_USAGE, (opt.env, value, ran.stderr)
