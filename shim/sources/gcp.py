"""Google Cloud Secret Manager: `ref+gcpsecrets://PROJECT/SECRET[?version=N]` and secrets-init's
`gcp:secretmanager:projects/P/secrets/S[/versions/V]` (version default `latest`).

    GET https://secretmanager.googleapis.com/v1/projects/P/secrets/S/versions/V:access
    Authorization: Bearer TOKEN   ->  {"payload": {"data": BASE64, "dataCrc32c": "N"}}

The payload's bytes are the value (JSON pointers apply as for every source).  A 404 is a
missing secret or version (what ?optional= forgives); 403 and the rest fail closed.

Credentials, in the order Google's libraries try them (google-auth `default()`):
  1. GOOGLE_APPLICATION_CREDENTIALS naming an `external_account` file (workload identity
     federation, as GKE-outside-Google, EKS, AKS and GitHub Actions hand it out): the OIDC
     token from `credential_source.file` is exchanged at `token_url` (Google STS, RFC 8693),
     then, with `service_account_impersonation_url`, for a service account's token.
     An `authorized_user` file (gcloud's) is exchanged with its refresh token.
     A `service_account` key file needs an RS256 signature, which the stdlib cannot make:
     refused with the fix.
  2. The metadata server (GKE workload identity, GCE, Cloud Run): GCE_METADATA_HOST is
     honoured as google-auth does (host[:port], plain http), with `Metadata-Flavor: Google`
     checked on the answer.  GCE_METADATA_HOST=none (or SHIM_GCP_METADATA=off) disables it.
The token is fetched once per start (shared by every reference, concurrently with the
other sources' work), renewed a minute before it expires, and never leaves shim.

SHIM_GCP_SECRETMANAGER_ENDPOINT overrides the API's base URL (a private endpoint, a
loopback stub in tests).  Hand-written because the client libraries are not stdlib and pull
grpc: google-cloud-secret-manager imports in 187.9 ms and adds 3.48 MiB of bytecode to the
binary, against 13.0 ms and 285 KiB for this module (scripts/bench alternatives;
docs/architecture.md); the REST surface used here is three documented calls.
"""

import base64
import json
from urllib.parse import quote, urlencode

from shim.sources.base import SourceError, cached_token, cloud_error, http_failure, json_object, read_secret_file
from shim.util.jsonio import scan
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref

API = "https://secretmanager.googleapis.com"
METADATA_HOST = "metadata.google.internal"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
OAUTH_TOKEN_URL = "https://oauth2.googleapis.com/token"
EXPIRY_MARGIN = 60.0
UNKNOWN_LIFETIME = 300.0
METADATA_TIMEOUT = 3.0


def fetch(ref: "Ref", ctx: "Context") -> bytes:
    project, secret = ref.path.split("/", 1)
    version = ref.query.get("version") or "latest"
    base = (ctx.env.get("SHIM_GCP_SECRETMANAGER_ENDPOINT") or API).rstrip("/")
    url = (f"{base}/v1/projects/{quote(project, safe='')}/secrets/{quote(secret, safe='')}"
           f"/versions/{quote(version, safe='')}:access")
    token = access_token(ctx)
    resp = ctx.request("GET", url, headers={"Authorization": f"Bearer {token}",
                                            "Accept": "application/json"})
    if resp.status == 401:  # revoked early: one fresh token, one more try
        ctx.forget("gcp-token")
        resp = ctx.request("GET", url, headers={"Authorization": f"Bearer {access_token(ctx)}"})
    if not resp.ok:
        raise _error(resp)
    data = json_object(resp.body, "Secret Manager")
    encoded = (data.get("payload") or {}).get("data")
    if not isinstance(encoded, str):
        raise SourceError("Secret Manager returned no payload")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        raise SourceError("Secret Manager payload is not base64") from None


def _error(resp):
    return cloud_error(resp, "status", "message")


# -- credentials ------------------------------------------------------------------------
def access_token(ctx: "Context") -> str:
    """The token, fetched once for every reference of every phase of this start."""
    return cached_token(ctx, "gcp-token", _token, EXPIRY_MARGIN)


def _token(ctx):
    path = ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        return _from_file(ctx, path)
    if _metadata_host(ctx) is None:
        raise SourceError("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS (an "
                          "external_account file) or run where the metadata server answers")
    return _from_metadata(ctx)


def _from_file(ctx, path):
    try:
        doc = json.loads(read_secret_file(path, "Google credentials file"))
    except ValueError:
        raise SourceError(f"Google credentials file {path} is not JSON") from None
    if not isinstance(doc, dict):
        raise SourceError(f"Google credentials file {path} is not a JSON object")
    kind = doc.get("type")
    if kind == "external_account":
        return _external_account(ctx, doc, path)
    if kind == "authorized_user":
        return _authorized_user(ctx, doc, path)
    if kind == "service_account":
        raise SourceError(f"Google credentials file {path} is a service account key, which "
                          "needs RS256 signing that shim does not do; use workload identity "
                          "federation (an external_account file) or the metadata server")
    raise SourceError(f"Google credentials file {path} has unsupported type {show(kind)}")


def _external_account(ctx, doc, path):
    """Workload identity federation: subject token -> STS token [-> impersonated token]."""
    source = doc.get("credential_source") or {}
    token_url, audience = doc.get("token_url"), doc.get("audience")
    if not isinstance(source, dict) or not source.get("file"):
        raise SourceError(f"external_account file {path}: only a credential_source.file (an "
                          "OIDC token file) is supported")
    if not token_url or not audience:
        raise SourceError(f"external_account file {path} lacks token_url or audience")
    subject = read_secret_file(source["file"], "OIDC token file")
    fmt = source.get("format") or {}
    if fmt.get("type") == "json":
        try:
            subject = json.loads(subject)[fmt.get("subject_token_field_name") or "id_token"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"OIDC token file {source['file']} lacks the field "
                              f"{show(fmt.get('subject_token_field_name'))}") from None
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": audience,
        "scope": SCOPE,
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token": subject,
        "subject_token_type": doc.get("subject_token_type") or
        "urn:ietf:params:oauth:token-type:jwt",
    }
    resp = ctx.request("POST", token_url, headers={
        "Content-Type": "application/x-www-form-urlencoded"}, body=urlencode(form).encode())
    if not resp.ok:
        raise SourceError(f"token exchange at {_host(token_url)}: {_oauth_error(resp)}")
    data = json_object(resp.body, "Google STS")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceError("Google STS returned no access_token")
    expires = _expiry(ctx, data.get("expires_in"))
    impersonate = doc.get("service_account_impersonation_url")
    if not impersonate:
        return token, expires
    body = json.dumps({"scope": [SCOPE], "lifetime": "3600s"}).encode()
    resp = ctx.request("POST", impersonate, headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/json"},
                       body=body)
    if not resp.ok:
        raise http_failure(resp, "impersonating the service account")
    data = json_object(resp.body, "IAM credentials")
    token = data.get("accessToken")
    if not isinstance(token, str) or not token:
        raise SourceError("IAM credentials returned no accessToken")
    return token, _rfc3339(ctx, data.get("expireTime"))


def _authorized_user(ctx, doc, path):
    fields = {k: doc.get(k) for k in ("client_id", "client_secret", "refresh_token")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        raise SourceError(f"authorized_user file {path} lacks client_id, client_secret or "
                          "refresh_token")
    form = dict(fields, grant_type="refresh_token")
    url = doc.get("token_uri") or OAUTH_TOKEN_URL
    resp = ctx.request("POST", url, headers={"Content-Type": "application/x-www-form-urlencoded"},
                       body=urlencode(form).encode())
    if not resp.ok:
        raise SourceError(f"refresh token at {_host(url)}: {_oauth_error(resp)}")
    data = json_object(resp.body, "Google OAuth")
    if not isinstance(data.get("access_token"), str):
        raise SourceError("Google OAuth returned no access_token")
    return data["access_token"], _expiry(ctx, data.get("expires_in"))


def _metadata_host(ctx):
    host = ctx.env.get("GCE_METADATA_HOST") or ctx.env.get("GCE_METADATA_IP") or METADATA_HOST
    if host.lower() == "none" or ctx.env.get("SHIM_GCP_METADATA", "").lower() in ("off", "false"):
        return None
    return host


def _from_metadata(ctx):
    from shim.net.http import NO_RETRY
    host = _metadata_host(ctx)
    url = f"http://{host}{TOKEN_PATH}"
    try:  # one quick try, as google-auth probes it: off Google Cloud nothing answers
        resp = ctx.request("GET", url, headers={"Metadata-Flavor": "Google"},
                           timeout=METADATA_TIMEOUT, retry=NO_RETRY)
    except SourceError as err:
        raise SourceError(f"no Google credentials: GOOGLE_APPLICATION_CREDENTIALS is not set "
                          f"and the metadata server {host} did not answer ({err.cause})") \
            from None
    if not resp.ok:
        raise http_failure(resp, "from the GCE metadata server")
    if resp.headers.get("metadata-flavor") != "Google":
        # Not the metadata server (a captive proxy, a wrong GCE_METADATA_HOST): never trust it.
        raise SourceError("the metadata server's answer lacks Metadata-Flavor: Google")
    data = json_object(resp.body, "GCE metadata server")
    if not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise SourceError("the GCE metadata server returned no access_token")
    return data["access_token"], _expiry(ctx, data.get("expires_in"))


# -- small helpers ------------------------------------------------------------------------
def _expiry(ctx, expires_in):
    """Absolute expiry; an unknown lifetime is asked again after a short while."""
    try:
        return ctx.now() + float(expires_in)
    except (TypeError, ValueError):
        return ctx.now() + UNKNOWN_LIFETIME


def _rfc3339(ctx, text):
    import datetime
    try:
        stamp = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return stamp.timestamp()
    except ValueError:
        return ctx.now() + UNKNOWN_LIFETIME


def _oauth_error(resp):
    try:
        data = scan(resp.body)
        text = ": ".join(str(data[k]) for k in ("error", "error_description") if data.get(k))
    except (ValueError, AttributeError, TypeError):
        text = resp.error_text()
    return f"HTTP {resp.status}" + (f" {' '.join(text.split())[:300]}" if text else "")


def _host(url):
    from urllib.parse import urlsplit
    return urlsplit(url).netloc
