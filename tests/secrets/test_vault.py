"""Vault/OpenBao source against a real OpenBao dev server over TLS on a host name."""

import pytest
from helpers import fetch

from shim.errors import EXIT_FETCH, ShimError


def tls_env(bao, ca, **extra):
    env = {"VAULT_ADDR": bao.addr, "VAULT_CACERT": str(ca.ca_file), "HOME": "/nonexistent"}
    env.update(extra)
    return env


def test_kv_v2_and_v1_with_a_token(bao, ca, names):
    env = tls_env(bao, ca, VAULT_TOKEN=bao.reader_token)
    got = fetch(["ref+vault://secret/app#/password", "ref+vault://kv1/app#/password",
                 "ref+vault://secret/app", "ref+vault://secret/app#/port"], env)
    assert got["ref+vault://secret/app#/password"] == "v2-pass-Zq81"
    assert got["ref+vault://kv1/app#/password"] == "v1-pass-Hk27"
    assert got["ref+vault://secret/app"] == {"password": "v2-pass-Zq81", "user": "app",
                                             "port": 5432}
    assert got["ref+vault://secret/app#/port"] == 5432


def test_fifty_secrets(bao, ca, names):
    env = tls_env(bao, ca, VAULT_TOKEN=bao.reader_token)
    refs = [f"ref+vault://secret/bench/s{i:02d}#/value" for i in range(50)]
    got = fetch(refs, env)
    assert [got[r] for r in refs] == [f"bench-{i:02d}" for i in range(50)]


def test_shim_prefixed_settings_win(bao, ca, names):
    env = tls_env(bao, ca, VAULT_ADDR="https://127.0.0.1:1", VAULT_TOKEN="wrong",
                  SHIM_VAULT_ADDR=bao.addr, SHIM_VAULT_TOKEN=bao.reader_token,
                  SHIM_VAULT_CACERT=str(ca.ca_file), VAULT_CACERT="/nonexistent")
    assert fetch(["ref+vault://secret/app#/user"], env)["ref+vault://secret/app#/user"] == "app"


def test_token_file_option_and_home_vault_token(bao, ca, names, tmp_path):
    token = tmp_path / "token"
    token.write_text(bao.reader_token + "\n")
    env = tls_env(bao, ca)
    got = fetch(["ref+vault://kv1/app#/user"], env, settings={"vault_token_file": str(token)})
    assert got["ref+vault://kv1/app#/user"] == "legacy"
    (tmp_path / ".vault-token").write_text(bao.reader_token)
    env = tls_env(bao, ca, HOME=str(tmp_path))
    assert fetch(["ref+vault://kv1/app#/user"], env)["ref+vault://kv1/app#/user"] == "legacy"


def test_jwt_login(bao, ca, names, tmp_path):
    jwt = tmp_path / "jwt"
    jwt.write_text(bao.signer.token(sub="ci", aud=["vault"]))
    env = tls_env(bao, ca, SHIM_VAULT_AUTH_METHOD="jwt", SHIM_VAULT_ROLE="app",
                  SHIM_VAULT_JWT_FILE=str(jwt))
    assert fetch(["ref+vault://secret/app#/user"], env)["ref+vault://secret/app#/user"] == "app"


def test_kubernetes_style_login_with_a_projected_token(bao, ca, names, tmp_path):
    sa = tmp_path / "token"
    sa.write_text(bao.sa_token())
    env = tls_env(bao, ca, SHIM_VAULT_ROLE="app", SHIM_VAULT_JWT_FILE=str(sa))
    assert fetch(["ref+vault://secret/app#/user"], env)["ref+vault://secret/app#/user"] == "app"
    sa.write_text(bao.sa_token(sub="system:serviceaccount:default:other"))
    with pytest.raises(ShimError) as info:
        fetch(["ref+vault://secret/app#/user"], env)
    assert "log in with kubernetes auth" in str(info.value) and "HTTP 400" in str(info.value)


def test_approle_login(bao, ca, names, tmp_path):
    secret_id = tmp_path / "sid"
    secret_id.write_text(bao.secret_id)
    env = tls_env(bao, ca, SHIM_VAULT_ROLE_ID=bao.role_id, SHIM_VAULT_SECRET_ID_FILE=str(secret_id))
    assert fetch(["ref+vault://kv1/app#/user"], env)["ref+vault://kv1/app#/user"] == "legacy"


def test_permission_denied_is_one_line_with_status(bao, ca, names):
    env = tls_env(bao, ca, VAULT_TOKEN=bao.reader_token)
    with pytest.raises(ShimError) as info:
        fetch(["ref+vault://cubbyhole/nothing"], env)
    err = info.value
    assert err.code == EXIT_FETCH and err.reason == "fetch-failed"
    msg = err.message()
    assert "ref+vault://cubbyhole/nothing (vault" in msg and "HTTP 40" in msg
    assert "\n" not in msg and bao.reader_token not in msg


def test_missing_key_and_untrusted_ca(bao, ca, names):
    env = tls_env(bao, ca, VAULT_TOKEN=bao.reader_token)
    with pytest.raises(ShimError, match="fragment #/nope selects nothing"):
        fetch(["ref+vault://secret/app#/nope"], env)
    env = tls_env(bao, ca, VAULT_TOKEN=bao.reader_token, VAULT_CACERT="")
    with pytest.raises(ShimError, match="TLS certificate of vault.shim.test.* not trusted"):
        fetch(["ref+vault://secret/app#/user"], env)


def test_other_logical_paths_are_read_as_is(bao, ca, names):
    """A non-KV mount (cubbyhole) is read at the path given, without /data/."""
    import json
    import urllib.request
    req = urllib.request.Request(bao.plain + "/v1/cubbyhole/x", method="POST",
                                 data=json.dumps({"k": "cubby"}).encode(),
                                 headers={"X-Vault-Token": bao.ROOT})
    urllib.request.urlopen(req, timeout=5).close()
    env = tls_env(bao, ca, VAULT_TOKEN=bao.ROOT)
    assert fetch(["ref+vault://cubbyhole/x#/k"], env)["ref+vault://cubbyhole/x#/k"] == "cubby"
