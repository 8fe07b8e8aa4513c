"""Refresh-time renewal: login tokens (real OpenBao) and dynamic-secret leases (a loopback stub:
the dev server has no dynamic secrets engine without an external database)."""

import json
import time

import pytest
import servers

from shim.sources.fetch import Item, fetch_all
from shim.sources.refs import parse


def tls_env(bao, ca, **extra):
    return {"VAULT_ADDR": bao.addr, "VAULT_CACERT": str(ca.ca_file), "HOME": "/nonexistent",
            **extra}


def test_login_token_is_renewed_then_replaced(bao, ca, names, tmp_path):
    bao.api("POST", "auth/approle/role/short", {"token_policies": ["reader"], "token_ttl": "3s",
                                                "token_max_ttl": "1h"})
    role_id = bao.api("GET", "auth/approle/role/short/role-id")["data"]["role_id"]
    secret_id = bao.api("POST", "auth/approle/role/short/secret-id")["data"]["secret_id"]
    env = tls_env(bao, ca, SHIM_VAULT_ROLE_ID=role_id, SHIM_VAULT_SECRET_ID=secret_id)
    store = {}
    items = [Item(parse("ref+vault://kv1/app#/user"))]

    def token():
        return store[("vault", bao.addr, "")].token

    assert fetch_all(items, env=env, store=store)[0].value == "legacy"
    first = token()
    before = bao.api("POST", "auth/token/lookup", {"token": first})["data"]
    assert not before.get("last_renewal_time")  # never renewed yet

    # Past two thirds of the 3 s TTL on shim's clock (the server's token is still valid):
    # the next fetch renews the token instead of logging in again.  No sleep.
    def later():
        return time.monotonic() + 2.3

    fetch_all(items, env=env, store=store, clock=later)
    assert token() == first  # renewed, not a new login
    after = bao.api("POST", "auth/token/lookup", {"token": first})["data"]
    assert after.get("last_renewal_time")  # the server saw the renewal
    bao.api("POST", "auth/token/revoke", {"token": first})
    store[("vault", bao.addr, "")].token_expires = 0  # due: renewal fails, so log in again
    assert fetch_all(items, env=env, store=store)[0].value == "legacy"
    assert token() != first


@pytest.fixture
def dynamic():
    state = {"reads": 0, "renews": 0, "renew_ok": True}

    def handler(req):
        if req.path.startswith("/v1/sys/internal/ui/mounts/"):
            return 200, {}, json.dumps({"data": {"type": "database", "path": "database/"}}).encode()
        if req.path == "/v1/database/creds/ro":
            state["reads"] += 1
            n = state["reads"]
            return 200, {}, json.dumps({"lease_id": f"database/creds/ro/{n}", "renewable": True,
                                        "lease_duration": 3,
                                        "data": {"username": f"u{n}", "password": f"p{n}"}}).encode()
        if req.path == "/v1/sys/leases/renew":
            state["renews"] += 1
            assert json.loads(req.body)["lease_id"].startswith("database/creds/ro/")
            if not state["renew_ok"]:
                return 400, {}, b'{"errors": ["lease not found"]}'
            return 200, {}, json.dumps({"lease_id": "x", "lease_duration": 3}).encode()
        return 404, {}, b'{"errors": []}'
    stub = servers.Stub(handler)
    stub.state = state
    yield stub
    stub.stop()


def test_dynamic_lease_is_renewed_not_reread(dynamic):
    now = [100.0]
    env = {"VAULT_ADDR": f"http://127.0.0.1:{dynamic.port}", "VAULT_TOKEN": "t"}
    store = {}
    items = [Item(parse("ref+vault://database/creds/ro#/username"))]

    def fetch():
        return fetch_all(items, env=env, store=store, clock=lambda: now[0])[0].value

    assert fetch() == "u1"
    now[0] += 1.0  # before two thirds of the lease: the same credentials, no request
    assert fetch() == "u1" and dynamic.state == {"reads": 1, "renews": 0, "renew_ok": True}
    now[0] += 1.5
    assert fetch() == "u1" and dynamic.state["renews"] == 1 and dynamic.state["reads"] == 1
    dynamic.state["renew_ok"] = False
    now[0] += 2.5
    assert fetch() == "u2"  # the lease expired: read again, new credentials
    assert dynamic.state["reads"] == 2
