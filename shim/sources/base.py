"""What every source shares: the error it raises and the context of one fetch phase.

A source is a module with `fetch(ref, ctx)` returning the value the reference names:
`str` or `bytes` for one document, or a `dict` of name -> str for a set (a Vault secret's
data, every SSM parameter under a path).  It raises `SourceError` with a one-line cause
(HTTP status plus the server's error text); `shim.sources.fetch` adds the reference and the
source name and turns it into the ShimError.  A cause never contains a secret value.

Every credential a source handles is registered for masking (`register`) before it is
used: the variables that carry them, token and secret files, secret-like settings, and the
credential of every request header that carries one (Authorization, X-Vault-Token,
X-Amz-Security-Token...).  So a server that reflects the request into an error body cannot
put a token into shim's messages or the result record (shim.errors.redact applies the
registry where they are written).
"""

import _thread  # the lock primitive alone: `threading` is for the concurrent fetch only
import time

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import ssl
    from typing import Any, Callable, Mapping

    from shim.net.http import Response

# The largest value a source returns (64 MiB; shim.net.http.MAX_BODY is the same cap).
MAX_VALUE = 64 << 20

# Variables that carry a credential a source may send (their values are registered).
CREDENTIAL_VARIABLES = (
    "VAULT_TOKEN", "BAO_TOKEN", "SHIM_VAULT_TOKEN", "VAULT_SECRET_ID", "SHIM_VAULT_SECRET_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "SHIM_AWS_SECRET_ACCESS_KEY", "SHIM_AWS_SESSION_TOKEN",
    "SHIM_HTTP_TOKEN",
)
# Settings whose value is a credential (the name says so).
CREDENTIAL_WORDS = ("token", "secret", "password")
# Request headers that carry a credential as their value (lower case).
CREDENTIAL_HEADERS = ("x-vault-token", "x-amz-security-token", "x-aws-ec2-metadata-token",
                      "proxy-authorization", "authorization", "cookie")


def register(*values: object) -> None:
    """Register sensitive values for masking (shim.util.mask.REGISTRY)."""
    from shim.util.mask import REGISTRY
    for value in values:
        if value:
            REGISTRY.add_secret(value)


def register_headers(headers: "Mapping[str, str] | None") -> None:
    """The credentials in request headers: a whole token header, or the credentials part
    of `Authorization: SCHEME CREDENTIALS` (not a SigV4 signature: it is per request)."""
    for name, value in dict(headers or {}).items():
        lower = name.lower()
        if not isinstance(value, str) or not (lower in CREDENTIAL_HEADERS or "token" in lower):
            continue
        scheme, _, rest = value.partition(" ")
        if lower.endswith("authorization") and rest:
            if scheme.upper().startswith("AWS4-"):
                continue
            if scheme.lower() == "basic":
                register(_basic_password(rest))
            register(rest.strip())
        register(value)


def _basic_password(encoded):
    import base64
    import binascii
    try:
        return base64.b64decode(encoded.strip(), validate=True).partition(b":")[2]
    except (binascii.Error, ValueError):
        return None


class SourceError(Exception):
    """A source could not produce the value; `cause` is one line, value-free.

    `missing`: the object or key does not exist (a 404, an absent key) -- the only failure
    `?optional=true` and `?default=` forgive; a 403, a TLS error or a timeout is not missing."""

    def __init__(self, cause, missing=False):
        super().__init__(cause)
        self.cause = " ".join(str(cause).split())
        self.missing = missing


class Context:
    """One fetch phase: environment, HTTP client, deadline, settings and shared state.

    env       the environment shim started with (sources read VAULT_ADDR, AWS_* there)
    http      a shim.net.http.Client (its cancelled() is the phase's)
    deadline  absolute time on `clock` after which no request starts
    settings  options that are not in the environment (vault_token_file, http_token_file,
              http_cacert)
    store     a dict kept across phases (refresh): Vault logins, leases, AWS credentials
    """

    def __init__(self, env, http, deadline=None, settings=None, clock=time.monotonic,
                 now=time.time, store=None):
        self.env = env
        register(*(env.get(name) for name in CREDENTIAL_VARIABLES))
        self.http = http
        self.deadline = deadline
        self.settings = settings or {}
        self.clock = clock
        self.now = now
        self._shared = {} if store is None else store  # pass one dict to keep logins
        self._phase = {}  # values of this phase only (batched reads), never kept
        self.refs = ()  # every reference of the phase, for sources that batch them
        self._locks = {}
        self._lock = _thread.allocate_lock()

    def setting(self, name: str, *env_names: str) -> "str | None":
        """An option value, else the first of `env_names` that is set (SHIM_ forms first)."""
        value = self.settings.get(name)
        if not value:
            value = next((self.env[k] for k in env_names if self.env.get(k)), None)
        if value and any(word in name for word in CREDENTIAL_WORDS) and \
                not name.endswith("_file"):
            register(value)
        return value

    def shared(self, key: object, factory: "Callable[[], Any]", phase: bool = False) -> "Any":
        """One value per key, built once even when many threads ask at once (one credential
        lookup, one Vault login, one batch).  Kept in `store` across phases, unless `phase`."""
        table = self._phase if phase else self._shared
        with self._lock:
            if key in table:
                return table[key]
            lock = self._locks.setdefault(key, _thread.allocate_lock())
        with lock:
            with self._lock:
                if key in table:
                    return table[key]
            value = factory()
            with self._lock:
                table[key] = value
            return value

    def forget(self, key: object) -> None:
        with self._lock:
            self._shared.pop(key, None)

    def request(self, method: str, url: str, headers: "dict[str, str] | None" = None,
                body: "bytes | None" = None, **kw: "Any") -> "Response":
        """An HTTP request under the phase deadline; transport failures become SourceError."""
        from shim.net.http import HttpError
        register_headers(headers)  # before it is sent: a reflecting server cannot show it
        try:
            return self.http.request(method, url, headers=headers, body=body,
                                     deadline=self.deadline, **kw)
        except HttpError as err:
            raise SourceError(err.cause) from None


def read_secret_file(path: str, what: str, one_line: bool = False) -> str:
    """The stripped contents of a token or credential file (re-read on every use, because
    the kubelet rotates projected tokens); SourceError naming the file, never its content."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as err:
        raise SourceError(f"read {what} {path}: {(err.strerror or str(err)).lower()}") from None
    if not value:
        raise SourceError(f"{what} {path} is empty")
    register(value)
    if one_line and ("\n" in value or "\r" in value):
        raise SourceError(f"{what} {path} has several lines")
    return value


class JsonNumber(str):
    """A JSON number kept as the text the document had (`1.5e3` stays `1.5e3`, not
    `1500.0`): a value is delivered as written, as External Secrets and jq -r do."""


def json_loads(text: "str | bytes") -> "Any":
    """json.loads, numbers kept as their JSON text (JsonNumber)."""
    from shim.util.jsonio import scan
    return scan(text, number=JsonNumber)


def json_text(value: object) -> "str | bytes":
    """The text a JSON value is delivered as (variables, files, masking): strings as they
    are, numbers as their JSON text, true/false, null as the empty string (as External
    Secrets does), objects and arrays as compact JSON.  bytes pass through."""
    if isinstance(value, (str, bytes)):
        return value  # the common case: no `json` import (start-up cost)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    import json

    if isinstance(value, (int, float)):
        return json.dumps(value)
    return _compact(value)


def _compact(value):
    import json
    if isinstance(value, JsonNumber):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _compact(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def json_object(body: bytes, what: str) -> "dict[str, Any]":
    """A response body that must be a JSON object (empty: {}); SourceError otherwise."""
    from shim.util.jsonio import scan
    try:
        data = scan(body) if body else {}
    except ValueError:
        raise SourceError(f"{what} returned a body that is not JSON ({len(body)} bytes)") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what} returned JSON that is not an object")
    return data


def tls_context(cafile: "str | None" = None, capath: "str | None" = None, what: str = "CA") -> "ssl.SSLContext":
    """shim.net.tls.client_context() with a source's CA; a store that cannot be loaded is a
    SourceError naming it.  A given CA is the whole trust store (as VAULT_CACERT and
    `curl --cacert` mean it), which also skips loading the system bundle."""
    try:
        import ssl
    except ImportError:
        raise SourceError("TLS is not available in this build of shim (no _ssl module)") from None
    from shim.errors import ShimError
    from shim.net.tls import client_context
    try:
        return client_context(cafile=cafile or None, capath=capath or None)
    except ShimError as err:  # shim.net.tls says what is wrong in words; name the file here
        shown = f"{what} {cafile or capath}" if cafile or capath else f"trust store {err.obj}"
        raise SourceError(f"load {shown}: {err.cause}") from None
    except (OSError, ssl.SSLError) as err:
        cause = getattr(err, "strerror", None) or getattr(err, "reason", None) or str(err)
        raise SourceError(f"load {what} {cafile or capath}: {str(cause).lower()}") from None


def http_failure(resp: "Response", what: str = "") -> SourceError:
    """SourceError for a non-2xx response: status and the server's own error text."""
    text = resp.error_text()
    head = f"HTTP {resp.status}" + (f" {what}" if what else "")
    return SourceError(f"{head}: {text}" if text else head, missing=resp.status in (404, 410))


def cloud_error(resp: "Response", *fields: str) -> "SourceError":
    """A cloud API's {"error": {...}} answer (Google: status, message; Azure: code, message)
    as one line, redacted before it is cut (a server may reflect the request's token); 404
    is `missing`.  Not JSON: the server's own text."""
    from shim.errors import redact
    from shim.util.jsonio import scan
    try:
        err = scan(resp.body).get("error") or {}
        text = ": ".join(str(err.get(f)) for f in fields if err.get(f))
    except (ValueError, AttributeError):
        text = resp.error_text()
    text = " ".join(redact(text).split())[:300]
    return SourceError(f"HTTP {resp.status}" + (f" {text}" if text else ""), missing=resp.status == 404)


def cached_token(ctx: "Context", key: str, fetch: "Any", margin: float) -> str:
    """The access token `fetch(ctx)` returns as (token, expires or None), fetched once for
    every reference of every phase of this start and again `margin` seconds before expiry."""
    token, expires = ctx.shared(key, lambda: fetch(ctx))
    if expires is not None and ctx.now() > expires - margin:
        ctx.forget(key)
        token, expires = ctx.shared(key, lambda: fetch(ctx))
    return token
