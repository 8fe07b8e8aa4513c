"""Servers that answer wrongly: garbage, wrong shapes, and the Vault namespace header.
Loopback stubs: no real server can be made to return garbage on purpose."""

import json

import pytest
import servers
from helpers import fetch

from shim.errors import ShimError


@pytest.fixture
def stub():
    answers = {}

    def handler(req):
        return answers.get(req.path.split("?")[0], (404, {}, b'{"errors": []}'))
    s = servers.Stub(handler)
    s.answers = answers
    yield s
    s.stop()


def vault_env(stub, **extra):
    return {"VAULT_ADDR": f"http://127.0.0.1:{stub.port}", "VAULT_TOKEN": "t", **extra}


def test_vault_garbage_and_wrong_shapes(stub):
    mounts = (200, {}, json.dumps({"data": {"type": "kv", "path": "kv/",
                                            "options": {"version": "1"}}}).encode())
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = mounts
    stub.answers["/v1/kv/a"] = (200, {}, b"\x00garbage<html>")
    with pytest.raises(ShimError, match="read: Vault returned a body that is not JSON"):
        fetch(["ref+vault://kv/a"], vault_env(stub))
    stub.answers["/v1/kv/a"] = (200, {}, b"[1, 2]")
    with pytest.raises(ShimError, match="Vault returned JSON that is not an object"):
        fetch(["ref+vault://kv/a"], vault_env(stub))
    stub.answers["/v1/kv/a"] = (200, {}, b'{"data": null}')
    with pytest.raises(ShimError, match="Vault returned no data"):
        fetch(["ref+vault://kv/a"], vault_env(stub))


def test_vault_namespace_header(stub):
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = (404, {}, b"")  # an old server: KV v1
    stub.answers["/v1/kv/a"] = (200, {}, b'{"data": {"k": "v"}}')
    got = fetch(["ref+vault://kv/a#/k"], vault_env(stub, VAULT_NAMESPACE="team-a"))
    assert got["ref+vault://kv/a#/k"] == "v"
    assert {h.get("X-Vault-Namespace") for _, _, h in stub.requests} == {"team-a"}
    stub.requests.clear()
    fetch(["ref+vault://kv/a?namespace=team-b#/k"], vault_env(stub, VAULT_NAMESPACE="team-a"))
    assert {h.get("X-Vault-Namespace") for _, _, h in stub.requests} == {"team-b"}


def test_aws_garbage(stub):
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{stub.port}", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"}
    stub.answers["/"] = (200, {}, b"<<not json>>")
    with pytest.raises(ShimError, match="ssm returned a body that is not JSON"):
        fetch(["ref+awsssm://x"], env)
    stub.answers["/"] = (200, {}, b'{"Parameters": []}')
    with pytest.raises(ShimError, match="parameter /x not found"):
        fetch(["ref+awsssm://x"], env)
    stub.answers["/"] = (200, {}, b'{"Name": "x"}')
    with pytest.raises(ShimError, match="neither SecretString nor SecretBinary"):
        fetch(["ref+awssecrets://x"], env)
    stub.answers["/"] = (500, {}, b"<Error><Code>InternalError</Code><Message>boom</Message></Error>")
    with pytest.raises(ShimError, match="HTTP 500 InternalError: boom"):
        fetch(["ref+awssecrets://x"], env, deadline=5)
