"""Token handling of the GCP and Azure sources with a recording fake HTTP client (no network):
one token per start however many references, renewed a minute before it expires, an
unknown lifetime asked again soon; and what each token request carries."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

from shim.net.http import Response
from shim.sources import azure, gcp
from shim.sources.base import Context
from shim.sources.refs import parse


class FakeHttp:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def request(self, method, url, headers=None, body=None, **kw):
        self.calls.append((method, url, dict(headers or {}), body))
        status, rheaders, payload = self.answer(method, url, headers or {}, body)
        return Response(status, "", {k.lower(): v for k, v in rheaders.items()},
                        json.dumps(payload).encode(), url)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def google(method, url, headers, body):
    if "/computeMetadata/" in url:
        return 200, {"Metadata-Flavor": "Google"}, {"access_token": "tok", "expires_in": 600}
    assert headers["Authorization"] == "Bearer tok"
    return 200, {}, {"payload": {"data": base64.b64encode(b"val").decode()}}


def test_gcp_one_token_then_renewed_before_expiry():
    http, now = FakeHttp(google), Clock()
    ctx = Context({"GCE_METADATA_HOST": "127.0.0.1:1"}, http, now=now)
    for name in ("a", "b", "c"):
        assert gcp.fetch(parse(f"ref+gcpsecrets://p/{name}"), ctx) == b"val"
    assert sum("/computeMetadata/" in c[1] for c in http.calls) == 1
    now.t += 600 - 59  # inside the last minute: a new token first
    gcp.fetch(parse("ref+gcpsecrets://p/a?version=3"), ctx)
    assert sum("/computeMetadata/" in c[1] for c in http.calls) == 2
    assert http.calls[-1][1].endswith("/v1/projects/p/secrets/a/versions/3:access")


def test_gcp_metadata_host_default_and_disable():
    http = FakeHttp(google)
    gcp.fetch(parse("ref+gcpsecrets://p/a"), Context({}, http, now=Clock()))
    assert http.calls[0][1] == ("http://metadata.google.internal/computeMetadata/v1/instance/"
                                "service-accounts/default/token")
    assert http.calls[0][2] == {"Metadata-Flavor": "Google"}
    try:
        gcp.fetch(parse("ref+gcpsecrets://p/a"), Context({"GCE_METADATA_HOST": "none"},
                                                         FakeHttp(google), now=Clock()))
    except Exception as err:  # noqa: BLE001
        assert "no Google credentials" in str(err)
    else:
        raise AssertionError("a disabled metadata server must not give a token")


def entra(method, url, headers, body):
    if "/oauth2/" in url or "/metadata/identity/" in url or "/msi/" in url:
        return 200, {}, {"access_token": "az", "expires_on": "11/10/2030 12:00:00 AM +00:00"}
    assert headers["Authorization"] == "Bearer az"
    return 200, {}, {"value": "v"}


def test_azure_unknown_lifetime_is_asked_again_soon(tmp_path):
    token = tmp_path / "t"
    token.write_text("sa-token\n")
    http, now = FakeHttp(entra), Clock()
    env = {"AZURE_FEDERATED_TOKEN_FILE": str(token), "AZURE_CLIENT_ID": "c",
           "AZURE_TENANT_ID": "t", "AZURE_AUTHORITY_HOST": "https://login.example/"}
    ctx = Context(env, http, now=now)
    assert azure.fetch(parse("ref+azurekeyvault://kv/s"), ctx) == "v"
    assert azure.fetch(parse("ref+azurekeyvault://kv/s/v1"), ctx) == "v"
    method, url, headers, body = http.calls[0]
    assert (method, url) == ("POST", "https://login.example/t/oauth2/v2.0/token")
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form["client_assertion"] == "sa-token" and form["scope"] == "https://vault.azure.net/.default"
    assert http.calls[1][1] == "https://kv.vault.azure.net/secrets/s?api-version=7.4"
    assert http.calls[2][1] == "https://kv.vault.azure.net/secrets/s/v1?api-version=7.4"
    now.t += azure.UNKNOWN_LIFETIME
    azure.fetch(parse("ref+azurekeyvault://kv/s"), ctx)
    assert sum("/oauth2/" in c[1] for c in http.calls) == 2


def test_azure_managed_identity_query_and_header():
    http = FakeHttp(entra)
    env = {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h",
           "AZURE_CLIENT_ID": "user-assigned"}
    azure.fetch(parse("ref+azurekeyvault://kv/s"), Context(env, http, now=Clock()))
    method, url, headers, _ = http.calls[0]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {"resource": "https://vault.azure.net", "client_id": "user-assigned",
                     "api-version": "2019-08-01"}
    assert headers == {"X-IDENTITY-HEADER": "h"}
