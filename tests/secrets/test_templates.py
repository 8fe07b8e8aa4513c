"""--template in whole runs against real OpenBao over TLS: a config file with embedded
references, ${VAR} and fallbacks rendered before the pre-hooks, mode 0400, a template whose
source is itself a reference, a missing variable (one-line error with SRC, line, column,
nothing started), and the config-file form with mode and a runtime profile."""

import json
import os

import pytest
from test_run import hosts, run_shim, vault_env  # noqa: F401  (hosts: a fixture)

PW = "v2-pass-Zq81"

TEMPLATE = """\
# app config
db:
  url: postgres://${DB_USER:-app}@${DB_HOST}:5432/app
  password: "ref+vault://secret/app#/password"
  legacy: ref+vault://kv1/app#/password+
  pool: ${POOL:-${DEFAULT_POOL:-4}}
price: $$5
"""


@pytest.fixture(scope="module")
def tmpl_secret(bao):
    bao.api("POST", "secret/data/tmpl", {"data": {"body": "user=${WHO}\npass=ref+vault://secret/app#/password+\n"}})


def test_template_rendered_before_pre_hooks(bao, ca, hosts, tmp_path):  # noqa: F811
    src = tmp_path / "app.yaml.tmpl"
    src.write_text(TEMPLATE)
    dst = tmp_path / "run/app.yaml"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "10-check"
    hook.write_text(f"#!/bin/sh\ngrep -q '{PW}' {dst} && touch {tmp_path}/hook-saw-it\n")
    hook.chmod(0o755)
    env = vault_env(bao, ca, DB_HOST="db.internal")
    r = run_shim(["--template", f"{src}={dst}", "--pre-hooks", str(hooks), "--", "cat", str(dst)],
                 env, hosts)
    assert r.returncode == 0, r.stderr
    want = TEMPLATE.replace("${DB_USER:-app}", "app").replace("${DB_HOST}", "db.internal") \
        .replace("ref+vault://secret/app#/password", PW).replace("ref+vault://kv1/app#/password+",
                                                                 "v1-pass-Hk27") \
        .replace("${POOL:-${DEFAULT_POOL:-4}}", "4").replace("$$5", "$5")
    assert dst.read_text() == want and r.stdout.decode() == want
    assert dst.stat().st_mode & 0o777 == 0o400
    assert (tmp_path / "hook-saw-it").exists()
    assert PW.encode() not in r.stderr


def test_source_is_a_reference(bao, ca, hosts, tmp_path, tmpl_secret):  # noqa: F811
    dst = tmp_path / "out.conf"
    env = vault_env(bao, ca, SHIM_TEMPLATE=f"ref+vault://secret/tmpl#/body={dst}", WHO="me")
    r = run_shim(["--", "true"], env, hosts)
    assert r.returncode == 0, r.stderr
    assert dst.read_text() == f"user=me\npass={PW}\n"


def test_missing_variable_names_source_line_and_column(bao, ca, hosts, tmp_path):  # noqa: F811
    src = tmp_path / "t.tmpl"
    src.write_text("a: 1\nb: x-${NOPE}\n")
    marker = tmp_path / "started"
    r = run_shim(["--template", f"{src}={tmp_path}/out", "--", "touch", str(marker)],
                 vault_env(bao, ca), hosts)
    assert r.returncode == 125
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert f"template {src}" in err and "line 2 column 6" in err and "NOPE" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_config_file_templates_mode_owner_and_profile(bao, ca, hosts, tmp_path):  # noqa: F811
    src = tmp_path / "spark.tmpl"
    src.write_text("spark.executor.memory ${MEM:-2g}\nspark.auth.secret ref+vault://secret/app#/password\n")
    plain = tmp_path / "plain.tmpl"
    plain.write_text("name=${NAME:-x}\n")
    cfg = tmp_path / "shim.json"
    uid, gid = os.getuid(), os.getgid()
    cfg.write_text(json.dumps({
        "templates": [{"source": str(plain), "destination": str(tmp_path / "plain.conf")}],
        "profiles": {"spark": {"templates": [
            {"source": str(src), "destination": str(tmp_path / "spark-defaults.conf"),
             "mode": "0440", "owner": f"{uid}:{gid}"}]}}}))
    r = run_shim(["--config", str(cfg), "--profile", "spark", "--", "true"],
                 vault_env(bao, ca, MEM="8g"), hosts)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "spark-defaults.conf"
    assert out.read_text() == f"spark.executor.memory 8g\nspark.auth.secret {PW}\n"
    assert out.stat().st_mode & 0o777 == 0o440
    assert not (tmp_path / "plain.conf").exists()  # the profile's list replaces the file's
    r = run_shim(["--config", str(cfg), "--", "true"], vault_env(bao, ca), hosts)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "plain.conf").read_text() == "name=x\n"
    assert (tmp_path / "plain.conf").stat().st_mode & 0o777 == 0o644


def test_a_fetch_failure_writes_no_template(bao, ca, hosts, tmp_path):  # noqa: F811
    src = tmp_path / "t.tmpl"
    src.write_text("x=ref+vault://secret/nope#/k\n")
    r = run_shim(["--template", f"{src}={tmp_path}/out", "--", "true"], vault_env(bao, ca), hosts)
    assert r.returncode == 117 and not (tmp_path / "out").exists()
    assert b"ref+vault://secret/nope#/k" in r.stderr


def test_template_values_are_masked_in_the_output(bao, ca, hosts, tmp_path):  # noqa: F811
    src, dst = tmp_path / "t.tmpl", tmp_path / "out.conf"
    src.write_text("pw=ref+vault://secret/app#/password+ user=${WHO}\n")
    r = run_shim(["--template", f"{src}={dst}", "--", "cat", str(dst)],
                 vault_env(bao, ca, WHO="me"), hosts, mask=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"pw=*** user=me\n" and dst.read_text() == f"pw={PW} user=me\n"
