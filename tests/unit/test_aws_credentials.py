"""The AWS credential chain's order and fallbacks with a recording fake HTTP client (no
sockets, no sleeping; the real endpoints are exercised in tests/secrets)."""

import json

import pytest

from shim.net.http import HttpError, Response
from shim.sources.aws import credentials as chain
from shim.sources.base import Context, SourceError


class FakeHttp:
    """Answers by (method, url) from a table; records every request."""

    def __init__(self, table):
        self.table = table
        self.seen = []

    def request(self, method, url, headers=None, body=None, **kw):
        self.seen.append((method, url, dict(headers or {})))
        out = self.table.get((method, url))
        if out is None:
            raise HttpError("connection refused", retryable=True)
        status, payload = out
        return Response(status, "", {}, payload if isinstance(payload, bytes)
                        else json.dumps(payload).encode(), url)


CREDS = {"AccessKeyId": "AKIDCONTAINER", "SecretAccessKey": "s", "Token": "t",
         "Expiration": "2099-01-01T00:00:00Z"}
IMDS = "http://127.0.0.1:1"


def ctx(env, table, now=1000.0):
    return Context(env, FakeHttp(table), now=lambda: now)


def test_env_wins_over_everything():
    c = ctx({"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s",
             "AWS_SECURITY_TOKEN": "legacy", "AWS_CONTAINER_CREDENTIALS_FULL_URI":
             "http://127.0.0.1:2/c"}, {})
    creds = chain.resolve(c)
    assert (creds.provider, creds.access_key, creds.token) == ("env", "AKIDENV", "legacy")
    assert c.http.seen == []


def test_container_before_imds_with_token_header():
    c = ctx({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:2/c",
             "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tok",
             "AWS_EC2_METADATA_SERVICE_ENDPOINT": IMDS},
            {("GET", "http://127.0.0.1:2/c"): (200, CREDS)})
    creds = chain.resolve(c)
    assert creds.provider == "container" and creds.expiration == 4070908800.0
    assert c.http.seen == [("GET", "http://127.0.0.1:2/c", {"Authorization": "tok"})]


def test_imds_v1_fallback_and_v1_disabled():
    base = IMDS + "/latest/meta-data/iam/security-credentials/"
    table = {("PUT", IMDS + "/latest/api/token"): (405, b""),
             ("GET", base): (200, b"role\n"), ("GET", base + "role"): (200, CREDS)}
    c = ctx({"AWS_EC2_METADATA_SERVICE_ENDPOINT": IMDS}, table)
    assert chain.resolve(c).provider == "imds"
    assert "x-aws-ec2-metadata-token" not in c.http.seen[1][2]
    c = ctx({"AWS_EC2_METADATA_SERVICE_ENDPOINT": IMDS, "AWS_EC2_METADATA_V1_DISABLED": "true"},
            table)
    with pytest.raises(SourceError, match="no AWS credentials"):
        chain.resolve(c)


def test_nothing_anywhere_and_disabled_imds():
    with pytest.raises(SourceError, match="no AWS credentials"):
        chain.resolve(ctx({"AWS_EC2_METADATA_SERVICE_ENDPOINT": IMDS}, {}))
    c = ctx({"AWS_EC2_METADATA_DISABLED": "true"}, {})
    with pytest.raises(SourceError):
        chain.resolve(c)
    assert c.http.seen == []  # never asked the metadata service


def test_expiring_credentials_are_resolved_again():
    now = [1000.0]
    soon = dict(CREDS, Expiration="1970-01-01T00:20:00Z")  # 1200: within the 5 min margin
    c = Context({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:2/c"},
                FakeHttp({("GET", "http://127.0.0.1:2/c"): (200, soon)}), now=lambda: now[0])
    chain.credentials(c)
    chain.credentials(c)
    assert len(c.http.seen) == 2  # not fresh: asked again
    c.http.table[("GET", "http://127.0.0.1:2/c")] = (200, CREDS)
    chain.credentials(c)
    chain.credentials(c)
    assert len(c.http.seen) == 3  # fresh now: cached


def test_bad_container_answers():
    url = "http://127.0.0.1:2/c"
    for payload, cause in ((b"<html>", "not JSON"), ({"AccessKeyId": "x"}, "lacks"),
                           ([1], "not an object")):
        c = ctx({"AWS_CONTAINER_CREDENTIALS_FULL_URI": url}, {("GET", url): (200, payload)})
        with pytest.raises(SourceError, match=cause):
            chain.resolve(c)
