"""Issue 16 B/D24/E25 through the CLI: every value a run delivers and every credential it
sends is masked on every output path (delegate, hooks, messages, result record), targets
are all-or-nothing, and value shapes are the same in every target.  Real processes and
files; the reflecting server is a loopback stub (no real server echoes a request's
Authorization header into a 500 body on purpose)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import servers
from test_run import hosts  # noqa: F401  (the fixture: vault.shim.test -> 127.0.0.1)

from support import base_env, shim_command


def shim(args, timeout=60, **env):
    return subprocess.run(shim_command() + args, env=base_env(**env), capture_output=True,
                          timeout=timeout)


# -- B4-B7: values as delivered --------------------------------------------------------------
@pytest.mark.parametrize("text", ["A=alpha-secret-1\nB=beta-secret-2\n",
                                  '{"A": "alpha-secret-1", "B": "beta-secret-2"}'])
def test_env_from_values_are_masked_one_by_one(tmp_path, text):
    doc = tmp_path / "doc"
    doc.write_text(text)
    r = shim(["--env-from", f"ref+file://{doc}", "--", "sh", "-c", 'echo "$A|$B"; echo "$B" >&2'])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"***|***\n" and r.stderr == b"***\n"


def test_json_keys_expanded_by_prefix_and_dir_are_masked_numbers_and_booleans_too(tmp_path):
    doc = tmp_path / "app.json"
    doc.write_text('{"user": "app-user-x9", "pass": "pw-Hk27-x", "pin": 735194, "on": true}')
    out = tmp_path / "vol"
    r = shim(["--secret-env-prefix", f"APP_=ref+file://{doc}",
              "--secret-dir", f"{out}=ref+file://{doc}",
              "--", "sh", "-c", f'echo "$APP_USER $APP_PASS $APP_PIN"; cat {out}/pass; echo'])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"*** *** ***\n***\n"


def test_a_number_selected_from_json_is_masked(tmp_path):
    doc = tmp_path / "n.json"
    doc.write_text('{"n": 123456}')
    r = shim(["--secret", f"N=ref+file://{doc}#/n", "--", "sh", "-c", 'echo "n=$N"'])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"n=***\n"


def test_binary_values_are_masked_as_bytes(tmp_path):
    blob = b"\x89PNG\xff\xfe-binary-secret-\x80\x81"
    src, dst = tmp_path / "blob", tmp_path / "out" / "blob"
    src.write_bytes(blob)
    r = shim(["--secret-file", f"{dst}=ref+file://{src}", "--", "sh", "-c", f"cat {dst}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"***" and dst.read_bytes() == blob


# -- B8: refresh -----------------------------------------------------------------------------
def test_a_value_changed_by_refresh_is_masked(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_text("first-value-1111")
    script = f"trap 'cat {dst}; echo' HUP; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(shim_command() + [
        "--secret-file", f"{dst}=ref+file://{src}", "--refresh", "1s", "--", "sh", "-c", script],
        env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        src.write_text("second-value-2222")
        line = proc.stdout.readline()  # after the refresh rewrote dst and sent HUP
        assert line == b"***\n", line
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert b"second-value" not in out + err


# -- B9: hooks ---------------------------------------------------------------------------------
def test_hooks_output_is_masked(tmp_path):
    doc = tmp_path / "s"
    doc.write_text("hook-visible-secret")
    for phase in ("pre", "post"):
        hook = tmp_path / phase / "10-show"
        hook.parent.mkdir()
        hook.write_text('#!/bin/sh\necho "out $S"\necho "err $S" >&2\n')
        hook.chmod(0o755)
    r = shim(["--secret", f"S=ref+file://{doc}", "--pre-hooks", str(tmp_path / "pre"),
              "--post-hooks", str(tmp_path / "post"), "--", "true"])
    assert r.returncode == 0, r.stderr
    assert b"hook-visible" not in r.stdout + r.stderr
    assert r.stderr.count(b"out ***\n") == 2 and r.stderr.count(b"err ***\n") == 2


# -- B10: a server that reflects the bearer token ------------------------------------------
def test_a_reflected_bearer_token_is_scrubbed_from_messages_and_the_record(tmp_path):
    def handler(req):
        return 500, {}, f"auth was {req.headers.get('Authorization')}".encode()

    stub = servers.Stub(handler)
    token = tmp_path / "token"
    token.write_text("bearer-token-SECRET-42\n")
    record = tmp_path / "result.json"
    try:
        r = shim(["--secret", f"X=ref+http://127.0.0.1:{stub.port}/x", "--result-file",
                  str(record), "--", "true"], SHIM_HTTP_TOKEN_FILE=str(token))
    finally:
        stub.stop()
    assert r.returncode == 117
    assert b"SECRET-42" not in r.stderr and b"HTTP 500" in r.stderr
    assert b"auth was ***" in r.stderr
    assert "SECRET-42" not in record.read_text()


# -- B11 ----------------------------------------------------------------------------------------
def test_exec_with_an_explicit_mask_secrets_is_a_usage_error(tmp_path):
    doc = tmp_path / "s"
    doc.write_text("some-secret-value")
    for args in (["--exec", "--mask-secrets"], ["--exec"]):
        r = shim(args + ["--secret", f"S=ref+file://{doc}", "--", "sh", "-c", "echo $S"])
        if args == ["--exec"]:  # the documented way to give masking up
            assert r.returncode == 0 and r.stdout == b"some-secret-value\n"
        else:
            assert r.returncode == 125 and r.stdout == b""
            assert r.stderr.count(b"\n") == 1 and b"--mask-secrets" in r.stderr
    r = shim(["--exec", "--", "true"], SHIM_MASK_SECRETS="true")
    assert r.returncode == 125 and b"SHIM_MASK_SECRETS" in r.stderr


# -- D24: all or nothing -------------------------------------------------------------------
def test_a_failed_run_leaves_no_secret_file_behind(tmp_path):
    doc = tmp_path / "s"
    doc.write_text("file-secret-value")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "dir").mkdir()
    (tmp_path / "t" / "dir" / "x").write_text("occupied")  # rename over a non-empty dir fails
    r = shim(["--secret-file", f"{tmp_path}/t/good=ref+file://{doc}",
              "--secret-file", f"{tmp_path}/t/new/deep=ref+file://{doc}",
              "--secret-file", f"{tmp_path}/t/dir=ref+file://{doc}", "--", "true"])
    assert r.returncode == 118, r.stderr
    assert sorted(os.listdir(tmp_path / "t")) == ["dir"]  # no good, no new/, no temp file
    assert os.listdir(tmp_path / "t" / "dir") == ["x"]


# -- E25: value shapes and quiet acceptances ---------------------------------------------------
def test_null_and_numbers_are_the_same_text_in_every_target(tmp_path):
    doc = tmp_path / "d.json"
    doc.write_text('{"z": null, "f": 1.5e3, "i": 10}')
    out = tmp_path / "out"
    r = shim(["--no-mask-secrets", "--secret", f"Z=ref+file://{doc}#/z",
              "--secret", f"F=ref+file://{doc}#/f",
              "--secret-env-prefix", f"P_=ref+file://{doc}",
              "--secret-file", f"{out}/z=ref+file://{doc}#/z",
              "--secret-file", f"{out}/f=ref+file://{doc}#/f",
              "--secret-dir", f"{out}/dir=ref+file://{doc}",
              "--", "sh", "-c", 'echo "[$Z][$F][$P_Z][$P_F][$P_I]"'])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"[][1.5e3][][1.5e3][10]\n"
    assert (out / "z").read_text() == "" and (out / "f").read_text() == "1.5e3"
    assert (out / "dir" / "z").read_text() == "" and (out / "dir" / "f").read_text() == "1.5e3"


@pytest.mark.parametrize("args,words", [
    (["--secret-items", '[{"ref": "ref+file:///etc/hostname", "file": "/tmp/x", "mode": "4755"}]'],
     b"setuid"),
    (["--secret-file", "/tmp/shim-dir/=ref+file:///etc/hostname"], b"names a directory"),
    (["--secret", "A=ref+file:///etc/hostname", "--secret", "A=ref+file:///etc/passwd"],
     b"given twice"),
])
def test_contradictions_are_usage_errors(args, words):
    r = shim(args + ["--", "true"])
    assert r.returncode == 125, r.stderr
    assert r.stderr.count(b"\n") == 1 and words in r.stderr


def test_dir_keys_are_named_as_fetched_and_renames_are_said(tmp_path):
    doc = tmp_path / "d.json"
    doc.write_text('{"../escape": "x1234567"}')
    r = shim(["--secret-dir", f"{tmp_path}/v=ref+file://{doc}", "--", "true"])
    assert r.returncode == 117 and b'"../escape"' in r.stderr and b".._escape" not in r.stderr
    assert not (tmp_path / "v").exists()
    doc.write_text('{"a/b": "x1234567"}')
    r = shim(["--secret-dir", f"{tmp_path}/v=ref+file://{doc}", "--", "true"])
    assert r.returncode == 0 and (tmp_path / "v" / "a_b").read_text() == "x1234567"
    assert b'"a/b" as "a_b"' in r.stderr
    doc.write_text('{"a/b": "x1234567", "a_b": "y1234567"}')
    r = shim(["--secret-dir", f"{tmp_path}/w=ref+file://{doc}", "--", "true"])
    assert r.returncode == 117 and b"both written as" in r.stderr


def test_exec_env_says_that_files_are_not_written(tmp_path):
    doc = tmp_path / "s"
    doc.write_text("v1234567")
    r = shim(["exec-env", "--secret-file", f"{tmp_path}/f=ref+file://{doc}", "--", "true"])
    assert r.returncode == 0
    assert b"not written" in r.stderr and not (tmp_path / "f").exists()


# -- C12: a large value set is built quickly and a stop signal is not delayed ----------------
def test_sigterm_while_a_large_env_from_is_masked(tmp_path):
    doc = tmp_path / "big.env"
    doc.write_text("".join(f"K{i}=value-{i:06d}-secret\n" for i in range(20000)))
    ready = tmp_path / "ready"
    proc = subprocess.Popen(shim_command() + [
        "--env-from", f"ref+file://{doc}", "--", sys.executable, "-c",
        f"import os,time; open({str(ready)!r}, 'w').close(); print(os.environ['K5'], flush=True);"
        " time.sleep(60)"], env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"***\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_mask_warnings_name_what_is_not_masked(tmp_path):
    doc = tmp_path / "d.env"
    doc.write_text("ONE=1\nLONG=long-value-ok\n")
    r = shim(["--env-from", f"ref+file://{doc}", "--", "sh", "-c", 'echo "$ONE $LONG"'])
    assert r.returncode == 0 and r.stdout == b"1 ***\n"
    assert b"shorter than 2 bytes are not masked" in r.stderr


def test_result_record_and_report_never_carry_a_value(tmp_path):
    doc = tmp_path / "s"
    doc.write_text("record-secret-77")
    record = tmp_path / "r.json"
    r = shim(["--secret", f"S=ref+file://{doc}", "--result-file", str(record), "--",
              "sh", "-c", "echo $S; exit 3"])
    assert r.returncode == 3 and r.stdout == b"***\n"
    assert "record-secret" not in record.read_text()
    json.loads(record.read_text())
    time.sleep(0)  # nothing to wait for: the record is written before shim exits


def test_sigterm_while_a_64_mib_secret_is_registered_stops_before_the_delegate(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.write(os.urandom(64 << 20))
    started, out = tmp_path / "started", tmp_path / "out"
    proc = subprocess.Popen(shim_command() + [
        "--secret-file", f"{out}=ref+file://{big}", "--", "sh", "-c", f"touch {started}"],
        env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not _blocks_term(proc.pid):  # shim blocks every signal first: from then on none is lost
        assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"not started" in err and not started.exists() and not out.exists()


def _blocks_term(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigBlk:")).split()[1]
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


# -- against the real servers (OpenBao, moto with signature checking) --------------------
def test_vault_values_numbers_and_the_token_are_masked(bao, ca, hosts):
    from test_run import run_shim
    env = base_env(VAULT_ADDR=bao.addr, VAULT_CACERT=str(ca.ca_file), VAULT_TOKEN=bao.reader_token)
    r = run_shim(["--secret-env-prefix", "APP_=ref+vault://secret/app", "--", "sh", "-c",
                  'echo "$APP_PASSWORD|$APP_PORT"; echo "$VAULT_TOKEN"'], env, hosts, mask=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"***|***\n***\n"  # the token passes to the delegate, masked in its output


def test_secrets_manager_binary_and_json_keys_are_masked(moto, hosts, tmp_path):
    from test_run import run_shim
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="mask/bin", SecretBinary=b"\x00\x01mask-binary\xff\xfe")
    sm.create_secret(Name="mask/json", SecretString=json.dumps({"api_key": "sm-key-Zx81",
                                                                "n": 770011}))
    out = tmp_path / "bin"
    r = run_shim(["--secret-file", f"{out}=ref+awssecrets://mask/bin",
                  "--secret-env-prefix", "S_=ref+awssecrets://mask/json",
                  "--", "sh", "-c", f'cat {out}; echo "|$S_API_KEY|$S_N"'],
                 base_env(**moto.env()), hosts, mask=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"***|***|***\n"
    assert moto.secret.encode() not in r.stderr
