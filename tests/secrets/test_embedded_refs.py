"""Embedded references and per-reference optional/default (issue 19, rules 1-2) in whole runs
against real OpenBao over TLS and moto with signature checking: references at the start,
middle and end of a value, two in one value, a '+' inside a JSON-pointer fragment (%2B),
secretref+ masked, a malformed one (usage error with column); ?optional=true / ?default=
against a 404, and a 403 / a bad signature that must still fail closed."""

import json

import pytest
from test_run import env_of, hosts, run_shim, vault_env  # noqa: F401  (hosts: a fixture)

from support import base_env

PW = "v2-pass-Zq81"


@pytest.fixture(scope="module")
def plus_secret(bao):
    bao.api("POST", "secret/data/plus", {"data": {"a+b": "plus-val-7Qx", "k": "kay-val-3Rm"}})


def test_embedded_start_middle_end_two_and_plus(bao, ca, hosts, plus_secret):  # noqa: F811
    env = vault_env(bao, ca,
                    DB_URL="postgres://app:ref+vault://secret/app#/password+@db:5432/app",
                    START="ref+vault://secret/app#/password+-suffix",
                    END="prefix-ref+vault://secret/app#/user",
                    TWO="ref+vault://secret/app#/user+:ref+vault://secret/app#/password+",
                    PLUS="[ref+vault://secret/plus#/a%2Bb+]",
                    WORD="xref+vault://secret/app")
    r = run_shim(["--", "env"], env, hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["DB_URL"] == f"postgres://app:{PW}@db:5432/app"
    assert got["START"] == f"{PW}-suffix" and got["END"] == "prefix-app"
    assert got["TWO"] == f"app:{PW}" and got["PLUS"] == "[plus-val-7Qx]"
    assert got["WORD"] == "xref+vault://secret/app"
    assert PW.encode() not in r.stderr


def test_secret_items_env_from_and_secretref_masked(bao, ca, hosts, tmp_path, plus_secret):  # noqa: F811
    dotenv = tmp_path / "app.env"
    dotenv.write_text("DSN=pg://app:ref+vault://secret/app#/password+@db\nPLAIN=1\n")
    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps({"secrets": [
        {"ref": "user=ref+vault://secret/app#/user+ key=ref+vault://secret/plus#/k",
         "file": str(tmp_path / "out/conf")},
        {"ref": "id-secretref+vault://secret/plus#/k+-end", "env": "TOKEN"}]}))
    r = run_shim(["--config", str(cfg), "--env-from", f"ref+file://{dotenv}", "--",
                  "sh", "-c", 'echo "DSN=$DSN"; echo "TOKEN=$TOKEN"; echo "PLAIN=$PLAIN"'],
                 vault_env(bao, ca), hosts, mask=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/conf").read_text() == "user=app key=kay-val-3Rm"
    out = r.stdout.decode()
    # Masked by default: the password inside the DSN (and "app", a fetched value too), and
    # the whole secretref+ text.
    assert "DSN=pg://***:***@db" in out and "TOKEN=***" in out and "PLAIN=1" in out
    assert PW not in out and "kay-val-3Rm" not in out


def test_malformed_embedded_reference_names_variable_and_column(bao, ca, hosts):  # noqa: F811
    env = vault_env(bao, ca, DB_URL="postgres://app:ref+vault:secret/db@db")
    r = run_shim(["--", "true"], env, hosts)
    assert r.returncode == 125
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and err.startswith("shim: ")
    assert "variable DB_URL" in err and "column 16" in err


def test_optional_and_default_against_a_404(bao, ca, hosts):  # noqa: F811
    env = vault_env(bao, ca, GONE="ref+vault://secret/nope?optional=true#/k",
                    FALLBACK="ref+vault://secret/nope?default=a%20b%2Bc#/k",
                    KEYLESS="x-ref+vault://secret/app?default=dflt#/nokey+",
                    ENVREF="ref+env://NOPE?optional=true")
    r = run_shim(["--", "env"], env, hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert "GONE" not in got and "ENVREF" not in got  # the variable is unset
    assert got["FALLBACK"] == "a b+c" and got["KEYLESS"] == "x-dflt"
    err = r.stderr.decode()
    assert "ref+vault://secret/nope?optional=true#/k" in err and "left out" in err


def test_optional_file_not_written(bao, ca, hosts, tmp_path):  # noqa: F811
    r = run_shim(["--secret-file", f"{tmp_path}/f=ref+vault://secret/nope?optional=true",
                  "--", "true"], vault_env(bao, ca), hosts)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "f").exists()


def test_a_403_still_fails_closed(bao, ca, hosts):  # noqa: F811
    # The reader policy grants secret/data/* and kv1/*: anything else is 403 permission denied.
    env = vault_env(bao, ca, X="ref+vault://cubbyhole2/x?optional=true&default=d")
    r = run_shim(["--", "true"], env, hosts)
    assert r.returncode == 117, r.stderr
    assert b"403" in r.stderr
    # ... and so does a bad token on a path that does not exist.
    env = vault_env(bao, ca, X="ref+vault://secret/nope?optional=true")
    env["SHIM_VAULT_TOKEN"] = "bad"
    r = run_shim(["--", "true"], env, hosts)
    assert r.returncode == 117 and b"403" in r.stderr


@pytest.fixture(scope="module")
def aws_data(moto):
    moto.client("secretsmanager").create_secret(Name="emb/db", SecretString=json.dumps(
        {"password": "aws-pass-8Kq"}))


def test_aws_embedded_default_on_not_found_but_not_on_bad_signature(moto, aws_data, hosts):  # noqa: F811
    env = base_env(**moto.env(
        URL="u:ref+awssecrets://emb/db#/password+@h",
        MISSING="ref+awssecrets://emb/none?default=fallback",
        NOKEY="ref+awssecrets://emb/db?optional=true#/nokey"))
    r = run_shim(["--", "env"], env, hosts)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["URL"] == "u:aws-pass-8Kq@h" and got["MISSING"] == "fallback"
    assert "NOKEY" not in got
    env["AWS_SECRET_ACCESS_KEY"] = "wrong" * 8  # signature mismatch: 403, never "missing"
    r = run_shim(["--", "env"], env, hosts)
    assert r.returncode == 117, r.stderr
