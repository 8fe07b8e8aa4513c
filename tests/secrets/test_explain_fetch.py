"""`shim explain --fetch` against a real OpenBao: one reference readable, one missing, one
denied by policy; each reported with its status, latency, length and sha256 prefix, and no
value anywhere in the output (JSON or text)."""

import hashlib
import json
import subprocess

from support import base_env, shim_command

VALUE_V2 = "v2-pass-Zq81"
DENIED_VALUE = "private-Qm55-value"


def _explain(args, env):
    return subprocess.run(shim_command() + ["explain"] + args, env=env, capture_output=True,
                          timeout=60)


def _env(bao):
    mounts = bao.api("GET", "sys/mounts")
    if "private/" not in mounts.get("data", mounts):  # a mount the reader policy does not grant
        bao.api("POST", "sys/mounts/private", {"type": "kv", "options": {"version": "2"}})
    bao.api("POST", "private/data/app", {"data": {"password": DENIED_VALUE}})
    return base_env(VAULT_ADDR=bao.plain, SHIM_VAULT_TOKEN=bao.reader_token,
                    DB_PASS="ref+vault://secret/app#/password")


def test_fetch_reports_ok_missing_and_denied_without_values(bao):
    env = _env(bao)
    args = ["--format", "json", "--fetch",
            "--secret", "MISSING=ref+vault://secret/nope#/password",
            "--secret", "DENIED=ref+vault://private/app#/password", "--", "env"]
    r = _explain(args, env)
    report = json.loads(r.stdout)
    rows = {row["ref"]: row for row in report["fetch"]}
    ok = rows["ref+vault://secret/app#/password"]
    assert ok["status"] == "ok"
    assert ok["length"] == len(VALUE_V2)
    assert ok["sha256"] == hashlib.sha256(VALUE_V2.encode()).hexdigest()[:len(ok["sha256"])]
    assert 8 <= len(ok["sha256"]) < 64  # a prefix only
    assert rows["ref+vault://secret/nope#/password"]["status"] == "missing"
    assert rows["ref+vault://private/app#/password"]["status"] == "denied"
    assert all(row["latency_ms"] >= 0 for row in rows.values())
    # a reference that cannot be fetched fails the run: the run's own code (117)
    assert r.returncode == 117, r.stderr
    for stream in (r.stdout, r.stderr, _explain(args[2:], env).stdout):  # JSON, stderr, text
        assert VALUE_V2.encode() not in stream and DENIED_VALUE.encode() not in stream
        assert bao.reader_token.encode() not in stream


def test_fetch_all_ok_exits_0_and_the_diff_names_the_reference(bao):
    env = _env(bao)
    r = _explain(["--format", "json", "--fetch", "--", "env"], env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [row["status"] for row in report["fetch"]] == ["ok"]
    changed = {row["name"]: row["steps"] for row in report["environment"]["changed"]}
    assert any("reference" in step for step in changed["DB_PASS"])
    assert "SHIM_VAULT_TOKEN" in {row["name"] for row in report["environment"]["removed"]}
    assert VALUE_V2.encode() not in r.stdout + r.stderr


def test_without_fetch_nothing_is_asked(bao):
    """Unreachable server, no --fetch: explain still succeeds (no network use)."""
    env = base_env(VAULT_ADDR="http://127.0.0.1:9", SHIM_VAULT_TOKEN="t",
                   DB_PASS="ref+vault://secret/app#/password")
    r = _explain(["--format", "json", "--", "env"], env)
    assert r.returncode == 0, r.stderr
    assert "fetch" not in json.loads(r.stdout)
    r = _explain(["--format", "json", "--fetch", "--", "env"], env)
    assert r.returncode == 117
    assert json.loads(r.stdout)["fetch"][0]["status"] == "unreachable"
