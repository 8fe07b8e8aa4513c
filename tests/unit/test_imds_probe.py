"""The instance metadata service is probed only when nothing else is configured, and the way
botocore does it: 1 s per request, 1 attempt (a recording fake client: no socket, no sleep)."""

import pytest

from shim.net.http import HttpError, Response
from shim.sources.aws import credentials as chain
from shim.sources.base import Context, SourceError

IMDS = "http://127.0.0.1:1"


class Recorder:
    """Every request with the timeout and attempts it was given; `answers` by (method, path)."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.seen = []

    def request(self, method, url, headers=None, body=None, timeout=None, retry=None, **kw):
        self.seen.append((method, url.replace(IMDS, ""), timeout, retry.attempts if retry else None))
        out = self.answers.get((method, url.replace(IMDS, "")))
        if out is None:
            raise HttpError("timed out", retryable=True)
        return Response(out[0], "", {}, out[1], url)


def resolve(env, answers=None):
    http = Recorder(answers)
    try:
        return chain.resolve(Context(dict(env, AWS_EC2_METADATA_SERVICE_ENDPOINT=IMDS), http)), http
    except SourceError as err:
        return err, http


def test_nothing_configured_asks_once_with_a_one_second_timeout():
    err, http = resolve({})
    assert isinstance(err, SourceError) and "the instance metadata service had none" in err.cause
    assert http.seen == [("PUT", "/latest/api/token", 1.0, 1)]


def test_every_imds_request_is_short():
    role = "/latest/meta-data/iam/security-credentials/"
    creds = (b'{"AccessKeyId": "AKIDIMDS", "SecretAccessKey": "s", "Token": "t", '
             b'"Expiration": "2099-01-01T00:00:00Z"}')
    got, http = resolve({}, {("PUT", "/latest/api/token"): (200, b"tok"),
                             ("GET", role): (200, b"app\n"), ("GET", role + "app"): (200, creds)})
    assert got.provider == "imds"
    assert [(m, t, a) for m, _, t, a in http.seen] == [("PUT", 1.0, 1), ("GET", 1.0, 1),
                                                       ("GET", 1.0, 1)]


def test_botocore_settings_move_the_limits():
    _, http = resolve({"AWS_METADATA_SERVICE_TIMEOUT": "3", "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "2"})
    assert http.seen == [("PUT", "/latest/api/token", 3.0, 2)]
    err, http = resolve({"AWS_METADATA_SERVICE_TIMEOUT": "soon"})
    assert 'AWS_METADATA_SERVICE_TIMEOUT must be a whole number above 0, got "soon"' in err.cause
    assert http.seen == []


@pytest.mark.parametrize("env, cause", [
    ({"AWS_ACCESS_KEY_ID": "AKID"}, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
    ({"AWS_SECRET_ACCESS_KEY": "s"}, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
    ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"}, "AWS_ROLE_ARN is not"),
])
def test_a_half_configured_provider_never_falls_through_to_imds(env, cause):
    err, http = resolve(env)
    assert isinstance(err, SourceError) and cause in err.cause
    assert http.seen == []  # the metadata service was not asked


def test_disabled_says_so():
    err, http = resolve({"AWS_EC2_METADATA_DISABLED": "true"})
    assert "disabled (AWS_EC2_METADATA_DISABLED)" in err.cause and http.seen == []


def test_the_suite_keeps_the_metadata_service_on_loopback():
    import os
    from urllib.parse import urlsplit

    from support import base_env
    for env in (os.environ, base_env()):
        if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
            continue
        host = urlsplit(env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")).hostname
        assert host in ("127.0.0.1", "::1", "localhost"), host


@pytest.mark.parametrize("name", ["AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"])
def test_a_profile_setting_is_not_a_reason_to_ask_imds(name):
    err, http = resolve({name: "prod"})
    assert isinstance(err, SourceError) and f"{name} is set, but shim does not read" in err.cause
    assert http.seen == []
    got, _ = resolve({name: "prod", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"})
    assert got.provider == "env"  # a provider before it still wins


def test_the_container_endpoint_is_asked_as_botocore_does():
    http = Recorder()
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": IMDS + "/creds"}
    with pytest.raises(SourceError):
        chain.resolve(Context(env, http))
    assert http.seen == [("GET", "/creds", 2.0, 3)]  # 2 s, 3 attempts; then no IMDS probe
