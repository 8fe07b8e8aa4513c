"""The whole run: shim fetches before the delegate starts, puts values where the code reads
them, fails closed, refreshes files, and never leaks a value.  Real OpenBao over TLS on a
host name (resolved through /etc/hosts in a private mount namespace), moto with signature
checking, real processes."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from support import base_env, require_tool, shim_command, wait_for

VALUE_V2 = "v2-pass-Zq81"
VALUE_V1 = "v1-pass-Hk27"


@pytest.fixture(scope="module")
def hosts(workdir):
    path = workdir / "hosts"
    path.write_text("127.0.0.1 localhost vault.shim.test config.shim.test\n")
    return path


def run_shim(args, env, hosts, timeout=60, mask=False, **kw):
    """shim with vault.shim.test -> 127.0.0.1: /etc/hosts bind-mounted in a new mount ns.

    These tests read the delegate's environment from its stdout, where fetched values are
    masked by default (tests/streams/test_masking.py): runs say --no-mask-secrets unless
    `mask` (subcommands take argv as they are).
    """
    require_tool("unshare")
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    args = list(args)
    if not mask and args and args[0].startswith("-"):
        args = ["--no-mask-secrets"] + args
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(hosts)] + \
        shim_command() + args
    return subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, **kw)


def vault_env(bao, ca, **extra):
    return base_env(VAULT_ADDR=bao.addr, VAULT_CACERT=str(ca.ca_file),
                    SHIM_VAULT_TOKEN=bao.reader_token, **extra)


def env_of(out):
    return dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)


def test_secret_env_prefix_and_refs_in_place(bao, ca, hosts):
    env = vault_env(bao, ca, APP_KEY="ref+vault://kv1/app#/password", PLAIN="ref-not")
    r = run_shim(["--secret", "DB_PASS=ref+vault://secret/app#/password",
                  "--secret-env-prefix", "APP_=ref+vault://secret/app", "--", "env"], env, hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["DB_PASS"] == VALUE_V2 and got["APP_KEY"] == VALUE_V1
    assert got["APP_USER"] == "app" and got["APP_PORT"] == "5432"
    assert got["PLAIN"] == "ref-not"
    assert "SHIM_VAULT_TOKEN" not in got  # shim's own credential stays with shim
    assert got["VAULT_ADDR"] == bao.addr  # standard variables pass through
    assert VALUE_V2.encode() not in r.stderr


def test_no_env_refs_leaves_them(bao, ca, hosts):
    env = vault_env(bao, ca, APP_KEY="ref+vault://kv1/app#/password")
    r = run_shim(["--no-env-refs", "--", "env"], env, hosts)
    assert env_of(r.stdout)["APP_KEY"] == "ref+vault://kv1/app#/password"


def test_files_and_secret_volume_dir(bao, ca, hosts, tmp_path):
    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps({"secrets": [
        {"ref": "ref+vault://secret/app#/password", "file": str(tmp_path / "s/pw"),
         "mode": "0440"},
        {"ref": "ref+vault://secret/app", "dir": str(tmp_path / "vol")},
        {"ref": "ref+vault://secret/none", "env": "MISSING", "optional": True,
         "default": "dflt"}]}))
    r = run_shim(["--config", str(cfg), "--", "env"], vault_env(bao, ca), hosts)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s/pw").read_text() == VALUE_V2
    assert (tmp_path / "s/pw").stat().st_mode & 0o777 == 0o440
    vol = tmp_path / "vol"
    assert os.readlink(vol / "password") == "..data/password"
    assert (vol / "password").read_text() == VALUE_V2 and (vol / "port").read_text() == "5432"
    assert os.readlink(vol / "..data").startswith("..")
    assert env_of(r.stdout)["MISSING"] == "dflt"


def test_env_from_megabytes(tmp_path, hosts):
    doc = tmp_path / "big.env"
    doc.write_text("".join(f"VAR_{i:04d}={'x' * 2000}{i}\n" for i in range(600)))  # ~1.2 MB
    js = tmp_path / "more.json"
    js.write_text(json.dumps({"FROM_JSON": "yes"}))
    r = run_shim(["--env-from", f"ref+file://{doc}", "--env-from", f"ref+file://{js}", "--",
                  "sh", "-c", 'echo "$VAR_0599" | wc -c; echo "$FROM_JSON"'], base_env(), hosts)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"2004", b"yes"]


def test_fail_closed_one_line_nothing_written(bao, ca, hosts, tmp_path):
    marker = tmp_path / "started"
    r = run_shim(["--secret-file", f"{tmp_path}/out=ref+vault://secret/app#/password",
                  "--secret", "X=ref+vault://secret/nope#/k", "--",
                  "sh", "-c", f"touch {marker}"], vault_env(bao, ca), hosts)
    assert r.returncode == 117
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("shim: fetch ref+vault://secret/nope#/k (vault, for env X): ")
    assert "HTTP 404" in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert VALUE_V2 not in r.stderr.decode()


def test_malformed_reference_is_usage(hosts):
    r = run_shim(["--secret", "X=ref+nope://a", "--", "true"], base_env(), hosts)
    assert r.returncode == 125
    assert b'unknown scheme "nope"' in r.stderr


def test_collision_names_both_sources(tmp_path, hosts):
    doc = tmp_path / "a.json"
    doc.write_text(json.dumps({"db-user": "a", "DB_USER": "b"}))
    r = run_shim(["--secret-env-prefix", f"P_=ref+file://{doc}", "--", "true"], base_env(), hosts)
    assert r.returncode == 125
    assert b"variable P_DB_USER: set by both" in r.stderr
    assert b"key db-user" in r.stderr and b"key DB_USER" in r.stderr


def test_scrub_credentials(bao, ca, hosts):
    env = vault_env(bao, ca, VAULT_TOKEN="bootstrap", AWS_SECRET_ACCESS_KEY="k", KEEP="1")
    r = run_shim(["--secret", "A=ref+vault://kv1/app#/user", "--scrub-credentials",
                  "--scrub-env", "KEEP", "--", "env"], env, hosts)
    got = env_of(r.stdout)
    assert got["A"] == "legacy"
    assert not {"VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "KEEP", "SHIM_VAULT_TOKEN"} & set(got)


def test_aws_sources_through_the_cli(moto, hosts):
    moto.client("ssm").put_parameter(Name="/cli/param", Value="ssm-cli-Vx", Type="SecureString",
                                     Overwrite=True)
    env = base_env(**moto.env())
    r = run_shim(["--secret", "P=ref+awsssm://cli/param", "--", "env"], env, hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["P"] == "ssm-cli-Vx" and got["AWS_ACCESS_KEY_ID"] == moto.key_id
    # By default the delegate still gets the value, and its output shows *** instead.
    r = run_shim(["--secret", "P=ref+awsssm://cli/param", "--", "env"], env, hosts, mask=True)
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["P"] == "***" and b"ssm-cli-Vx" not in r.stdout


def test_values_never_leak(bao, ca, hosts, tmp_path):
    """stderr (debug), result record, shim check, ps and /proc/*/cmdline of every process."""
    result = tmp_path / "result.json"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"secrets": {"env": {"S": "ref+vault://secret/app#/password"}}}))
    ready = tmp_path / "ready"
    args = ["--config", str(cfg), "--log-level", "debug", "--result-file", str(result),
            "--", "sh", "-c", f"touch {ready}; sleep 30"]
    require_tool("unshare")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)] + shim_command() + args,
        env=vault_env(bao, ca), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(ready.exists, 20)
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout
        assert VALUE_V2.encode() not in ps
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    assert VALUE_V2.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    pass
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert VALUE_V2.encode() not in err and VALUE_V2.encode() not in out
    assert VALUE_V2 not in result.read_text()
    chk = subprocess.run(shim_command() + ["check", "--config", str(cfg)], env=vault_env(bao, ca),
                         capture_output=True)
    assert VALUE_V2.encode() not in chk.stdout + chk.stderr


def test_exec_env(bao, ca, hosts, tmp_path):
    """The delegate's environment for a debug shell; files stay the running delegate's."""
    r = run_shim(["exec-env", "--secret", "S=ref+vault://kv1/app#/password",
                  "--secret-file", f"{tmp_path}/f=ref+vault://kv1/app#/password", "--", "env"],
                 vault_env(bao, ca), hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["S"] == VALUE_V1 and "SHIM_VAULT_TOKEN" not in got
    assert not (tmp_path / "f").exists()


def test_refresh_rewrites_and_signals(bao, ca, hosts, tmp_path):
    bao.api("POST", "kv1/rotating", {"pw": "gen-1"})
    out = tmp_path / "pw"
    hups = tmp_path / "hups"
    script = (f"trap 'echo hup >> {hups}' HUP; i=0; while [ $i -lt 300 ]; do sleep 0.1; "
              "i=$((i+1)); done")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)] + shim_command() +
        ["--log-level", "debug", "--secret-file", f"{out}=ref+vault://kv1/rotating#/pw", "--refresh", "1s",
         "--", "sh", "-c", script], env=vault_env(bao, ca), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    err = _Collected(proc.stderr)
    try:
        assert wait_for(out.exists, 20)
        assert out.read_text() == "gen-1"
        # Events on shim's stderr, not sleeps: a round that found the same value...
        err.wait_for(b"round 1: nothing changed")
        assert not hups.exists()  # unchanged: no signal
        bao.api("POST", "kv1/rotating", {"pw": "gen-2"})
        err.wait_for(b"changed files")  # ...a round that rewrote the file and signalled...
        assert wait_for(lambda: hups.exists() and hups.read_text().count("hup") == 1, 20)
        assert out.read_text() == "gen-2"
        bao.api("DELETE", "kv1/rotating")  # ...and a failing round that keeps the old value
        err.wait_for(b"keeping the previous values")
        assert out.read_text() == "gen-2" and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    assert b"refresh secrets" in err.data


class _Collected:
    """A process's stderr, read on a thread; `wait_for(text)` waits for what shim says."""

    def __init__(self, stream):
        import threading

        self.data, self.stream = b"", stream
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in iter(self.stream.readline, b""):
            self.data += line

    def wait_for(self, text, timeout=30):
        assert wait_for(lambda: text in self.data, timeout), f"no {text!r}; stderr: {self.data[-2000:]!r}"


@pytest.fixture
def hanging():
    import threading

    import servers
    release, arrived = threading.Event(), threading.Event()

    def handler(req):
        arrived.set()
        release.wait(30)
        return 200, {}, b"late"
    stub = servers.Stub(handler)
    yield f"http://127.0.0.1:{stub.port}/slow", arrived
    release.set()
    stub.stop()


def test_sigterm_during_fetch_stops_at_once(hanging, hosts, tmp_path):
    url, arrived = hanging
    marker = tmp_path / "started"
    proc = subprocess.Popen(shim_command() + ["--secret", f"X=ref+{url}", "--",
                                              "sh", "-c", f"touch {marker}"],
                            env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert arrived.wait(20)  # shim is in the fetch: the server holds its request
    sent = time.monotonic()
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert b"not started: signal SIGTERM arrived first" in err
    assert time.monotonic() - sent < 5 and not marker.exists()


def test_fetch_deadline(hanging, hosts):
    url, _ = hanging
    r = run_shim(["--fetch-deadline", "700ms", "--secret", f"X=ref+{url}", "--", "true"],
                 base_env(), hosts)
    assert r.returncode == 117
    assert b"fetch ref+http://127.0.0.1" in r.stderr
    assert b"raise --fetch-deadline" in r.stderr or b"timed out" in r.stderr


def test_read_only_target_fails_before_anything_is_written(tmp_path):
    """Two files, the second under a read-only mount: neither is written, exit 118."""
    require_tool("unshare")
    ro = tmp_path / "ro"
    ro.mkdir()
    src = tmp_path / "v.txt"
    src.write_text("value-Pq1")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        str(ro)] + shim_command() +
                       ["--secret-file", f"{tmp_path}/a/first=ref+file://{src}",
                        "--secret-file", f"{ro}/second=ref+file://{src}", "--", "true"],
                       env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 118, r.stderr
    assert b"read-only file system" in r.stderr and b"value-Pq1" not in r.stderr
    assert not (tmp_path / "a").exists()


def test_memory_backed_warning(tmp_path):
    """A secret file on a disk-backed filesystem gets a warning; on a tmpfs none."""
    require_tool("unshare")
    src = tmp_path / "v.txt"
    src.write_text("value")
    mem = tmp_path / "mem"
    mem.mkdir()
    disk = tmp_path / "disk"  # /tmp here is a disk; where it is a tmpfs only half is checked
    script = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        str(mem)] + shim_command() +
                       ["--secret-file", f"{mem}/s=ref+file://{src}",
                        "--secret-file", f"{disk}/secret-file-test=ref+file://{src}",
                        "--", "true"], env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    from shim.sources.targets import memory_backed
    warned = r.stderr.decode()
    assert f"secret file {mem}/s" not in warned
    if not memory_backed(str(disk)):
        assert f"write secret file {disk}/secret-file-test: not on a memory-backed" in warned


def test_hooks_never_see_shims_own_credentials(tmp_path, hosts):
    """Even when the fetch fails and only the post-hooks run."""
    hooks = tmp_path / "post"
    hooks.mkdir()
    dump = tmp_path / "hook-env"
    hook = hooks / "10-dump"
    hook.write_text(f"#!/bin/sh\nenv > {dump}\n")
    hook.chmod(0o755)
    env = base_env(SHIM_VAULT_TOKEN="shim-own-Tk9", VAULT_ADDR="http://127.0.0.1:9")
    r = run_shim(["--post-hooks", str(hooks), "--fetch-deadline", "2s",
                  "--secret", "X=ref+vault://secret/app#/k", "--", "true"], env, hosts)
    assert r.returncode == 117, r.stderr
    text = dump.read_text()
    assert "SHIM_REASON=fetch-failed" in text and "shim-own-Tk9" not in text
