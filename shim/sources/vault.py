"""Vault / OpenBao: KV v1 and v2 and any other logical read, four ways to log in.

Why not hvac: it imports requests, 82.8 ms of imports and 2.21 MiB of bytecode in the
binary against 10.1 ms and 347 KiB for this module with shim.net.http (scripts/bench
alternatives; docs/architecture.md); the API used here is a handful of JSON calls.

Settings (a `ref+vault://...?address=&namespace=` parameter wins, then the SHIM_ form, then
the standard one; SHIM_ forms never reach the delegate):
  address     SHIM_VAULT_ADDR, VAULT_ADDR, BAO_ADDR
  namespace   SHIM_VAULT_NAMESPACE, VAULT_NAMESPACE            (X-Vault-Namespace header)
  CA          SHIM_VAULT_CACERT / SHIM_VAULT_CAPATH, VAULT_CACERT / VAULT_CAPATH
  auth method SHIM_VAULT_AUTH_METHOD, VAULT_AUTH_METHOD (vals), `?auth_method=`:
              token | kubernetes | jwt | approle; when unset: token if one is found, else
              approle when a role id is set, else kubernetes when a role is set
  token       SHIM_VAULT_TOKEN, --vault-token-file, VAULT_TOKEN, ~/.vault-token
  role        SHIM_VAULT_ROLE, VAULT_ROLE (kubernetes, jwt)
  jwt file    SHIM_VAULT_JWT_FILE; kubernetes defaults to the projected service-account token
  approle     SHIM_VAULT_ROLE_ID / VAULT_ROLE_ID, SHIM_VAULT_SECRET_ID(_FILE) / VAULT_SECRET_ID
  auth mount  SHIM_VAULT_AUTH_MOUNT (default: the method's name)

KV version: like `vault kv get`, ask GET /v1/sys/internal/ui/mounts/<path> for the mount's
type and options.version; KV v2 reads <mount>/data/<rest> and returns data.data, anything
else reads the path as given (dynamic secrets included) and returns data.  404 from that
endpoint means an old server: KV v1, as the CLI assumes.

Refresh: the login token is renewed (auth/token/renew-self) when two thirds of its TTL have
passed, re-logging in when renewal fails; a secret with a renewable lease is renewed
(sys/leases/renew) instead of read again, so dynamic credentials stay the same.
"""

import _thread  # a lock without importing threading (start-up cost)
import os

from shim.errors import redact
from shim.sources.base import SourceError, json_object, read_secret_file
from shim.util.jsonio import scan
from shim.util.text import show
from shim.util.urlcode import quote

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.net.http import Response
    from shim.sources.base import Context
    from shim.sources.refs import Ref

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
METHODS = ("token", "kubernetes", "jwt", "approle")


def fetch(ref: "Ref", ctx: "Context") -> "Any":
    vault = ctx.shared(("vault", _address(ref, ctx), _namespace(ref, ctx)),
                       lambda: Vault(ctx, _address(ref, ctx), _namespace(ref, ctx)))
    vault.ctx = ctx  # the client outlives one phase (refresh); requests use the current one
    return vault.read(ref)


def _address(ref, ctx):
    addr = ref.query.get("address") or ctx.setting("vault_addr", "SHIM_VAULT_ADDR",
                                                   "VAULT_ADDR", "BAO_ADDR")
    if not addr:
        raise SourceError("no Vault address: set VAULT_ADDR (or SHIM_VAULT_ADDR, ?address=)")
    if not addr.startswith(("http://", "https://")):
        raise SourceError(f"Vault address {show(addr)} must start with http:// or https://")
    return addr.rstrip("/")


def _namespace(ref, ctx):
    return ref.query.get("namespace") or ctx.setting("vault_namespace", "SHIM_VAULT_NAMESPACE",
                                                     "VAULT_NAMESPACE") or ""


class Vault:
    """One server (address + namespace): TLS, login state, mount versions, leases."""

    def __init__(self, ctx, address, namespace):
        self.ctx = ctx
        self.address = address
        self.namespace = namespace
        self.tls = None
        if address.startswith("https://"):
            from shim.sources.base import tls_context
            self.tls = tls_context(
                ctx.setting("vault_cacert", "SHIM_VAULT_CACERT", "VAULT_CACERT"),
                ctx.setting("vault_capath", "SHIM_VAULT_CAPATH", "VAULT_CAPATH"), "Vault CA")
        self.token = None
        self.token_expires = None  # clock time to renew at, None = never
        self.renewable = False
        self.login_method = None
        self.mounts: dict[str, str | None] = {}  # mount path ("secret/") -> version ("1" / "2" / None = not KV)
        self.mount_lock = _thread.allocate_lock()  # one probe per mount, however many threads ask
        self.leases = {}  # ref path -> (lease_id, data, renew_at)

    # -- HTTP ------------------------------------------------------------------------
    def call(self, method: str, path: str, body: "dict[str, Any] | None" = None, token: bool = True) -> "Response":
        headers = {}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        if token:
            headers["X-Vault-Token"] = self.auth()
        data = None
        if body is not None:
            import json  # request bodies only (logins, renewals): reads never import it

            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.ctx.request(method, f"{self.address}/v1/{path}", headers=headers,
                                body=data, tls=self.tls)

    def json_or_fail(self, resp: "Response", what: str) -> "dict[str, Any]":
        if not resp.ok:
            raise vault_error(resp, what)
        return json_object(resp.body, f"{what}: Vault")

    # -- reading ---------------------------------------------------------------------
    def read(self, ref: "Ref") -> "Any":
        lease = self.leases.get(ref.path)
        if lease is not None:
            data = self._renew_lease(lease)
            if data is not None:
                return data
        mount, version = self.mount_of(ref.path)
        if version == "2":
            rest = ref.path[len(mount):]
            path = f"{mount}data/{rest}"
            if ref.query.get("version"):
                path += "?version=" + quote(ref.query["version"])
            body = self.json_or_fail(self.call("GET", _q(path)), f"read {ref.path}")
            data = (body.get("data") or {}).get("data")
        else:
            body = self.json_or_fail(self.call("GET", _q(ref.path)), f"read {ref.path}")
            data = body.get("data")
        if data is None:
            raise SourceError("Vault returned no data (deleted or destroyed version?)",
                              missing=True)
        if body.get("lease_id") and body.get("renewable"):
            self.leases[ref.path] = (body["lease_id"], data,
                                     self.ctx.clock() + 2 * int(body.get("lease_duration", 0)) / 3)
        return data

    def mount_of(self, path: str) -> "tuple[str, str | None]":
        """(mount path with trailing '/', KV version) for `path`, asked once per mount."""
        with self.mount_lock:
            for mount, version in self.mounts.items():
                if path.startswith(mount):
                    return mount, version
            return self._probe(path)

    def _probe(self, path):
        resp = self.call("GET", "sys/internal/ui/mounts/" + _q(path))
        version: str | None
        if resp.status == 404:
            mount, version = path.split("/")[0] + "/", "1"
        else:
            data = self.json_or_fail(resp, f"look up the mount of {path}").get("data") or {}
            mount = data.get("path") or path.split("/")[0] + "/"
            options = data.get("options") or {}
            version = str(options.get("version", "1")) if data.get("type") in ("kv", "generic") \
                else None
        self.mounts[mount] = version
        return mount, version

    def _renew_lease(self, lease):
        lease_id, data, renew_at = lease
        if self.ctx.clock() < renew_at:
            return data
        resp = self.call("PUT", "sys/leases/renew", {"lease_id": lease_id})
        if not resp.ok:
            return None  # expired or revoked: read the path again
        body = scan(resp.body or b"{}")
        self.leases = {k: (v if v[0] != lease_id else (lease_id, data, self.ctx.clock() +
                           2 * int(body.get("lease_duration", 0)) / 3))
                       for k, v in self.leases.items()}
        return data

    # -- authentication ----------------------------------------------------------------
    def auth(self) -> "str | None":
        """A usable token: the configured one, or a login's, renewed when due."""
        if self.token is not None:
            if self.token_expires is not None and self.ctx.clock() >= self.token_expires:
                self._renew_or_login()
            return self.token
        method = self._method()
        if method == "token":
            self.token = self._configured_token()
        else:
            self._login(method)
        return self.token

    def _method(self):
        ctx = self.ctx
        method = ctx.setting("vault_auth_method", "SHIM_VAULT_AUTH_METHOD", "VAULT_AUTH_METHOD")
        if method:
            if method not in METHODS:
                raise SourceError(f"unknown Vault auth method {show(method)}; "
                                  f"use one of {', '.join(METHODS)}")
            return method
        if self._configured_token(required=False):
            return "token"
        if ctx.setting("vault_role_id", "SHIM_VAULT_ROLE_ID", "VAULT_ROLE_ID"):
            return "approle"
        if ctx.setting("vault_role", "SHIM_VAULT_ROLE", "VAULT_ROLE"):
            return "kubernetes"
        raise SourceError("no Vault credentials: set VAULT_TOKEN (or SHIM_VAULT_TOKEN, "
                          "--vault-token-file), or a role for Kubernetes/JWT/AppRole login")

    def _configured_token(self, required=True):
        ctx = self.ctx
        token = ctx.env.get("SHIM_VAULT_TOKEN")
        if not token and ctx.settings.get("vault_token_file"):
            token = read_secret_file(ctx.settings["vault_token_file"], "Vault token file")
        token = token or ctx.env.get("VAULT_TOKEN")
        if not token:
            home = ctx.env.get("HOME") or os.path.expanduser("~")
            path = os.path.join(home, ".vault-token")
            if os.path.exists(path):
                token = read_secret_file(path, "Vault token file")
        if not token and required:
            raise SourceError("no Vault token: set VAULT_TOKEN, SHIM_VAULT_TOKEN or "
                              "--vault-token-file")
        return token

    def _login(self, method):
        ctx = self.ctx
        mount = ctx.setting("vault_auth_mount", "SHIM_VAULT_AUTH_MOUNT") or method
        if method == "approle":
            role_id = ctx.setting("vault_role_id", "SHIM_VAULT_ROLE_ID", "VAULT_ROLE_ID")
            secret_file = ctx.setting("vault_secret_id_file", "SHIM_VAULT_SECRET_ID_FILE")
            secret_id = (read_secret_file(secret_file, "AppRole secret-id file") if secret_file else
                         ctx.setting("vault_secret_id", "SHIM_VAULT_SECRET_ID", "VAULT_SECRET_ID"))
            if not role_id:
                raise SourceError("AppRole login needs SHIM_VAULT_ROLE_ID")
            body = {"role_id": role_id}
            if secret_id:
                body["secret_id"] = secret_id
        else:
            role = ctx.setting("vault_role", "SHIM_VAULT_ROLE", "VAULT_ROLE")
            if not role:
                raise SourceError(f"{method} login needs a role: set SHIM_VAULT_ROLE")
            jwt_file = ctx.setting("vault_jwt_file", "SHIM_VAULT_JWT_FILE") or (
                SA_TOKEN if method == "kubernetes" else None)
            if not jwt_file:
                raise SourceError("JWT login needs SHIM_VAULT_JWT_FILE")
            # Re-read every login: projected service-account tokens are rotated by the kubelet.
            body = {"role": role, "jwt": read_secret_file(jwt_file, "service-account token")}
        resp = self.call("POST", f"auth/{_q(mount)}/login", body, token=False)
        data = self.json_or_fail(resp, f"log in with {method} auth at auth/{mount}")
        auth = data.get("auth") or {}
        if not auth.get("client_token"):
            raise SourceError(f"{method} login returned no token")
        self.token = auth["client_token"]
        self.login_method = method
        self.renewable = bool(auth.get("renewable"))
        ttl = int(auth.get("lease_duration") or 0)
        self.token_expires = self.ctx.clock() + 2 * ttl / 3 if ttl else None

    def _renew_or_login(self) -> None:
        if self.renewable:
            resp = self._renew_self()
            if resp.ok:
                auth = (scan(resp.body or b"{}").get("auth") or {})
                ttl = int(auth.get("lease_duration") or 0)
                self.token_expires = self.ctx.clock() + 2 * ttl / 3 if ttl else None
                return
        if self.login_method:
            self._login(self.login_method)
        else:
            self.token_expires = None

    def _renew_self(self):
        headers = {"X-Vault-Token": self.token, "Content-Type": "application/json"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        return self.ctx.request("POST", f"{self.address}/v1/auth/token/renew-self",
                                headers=headers, body=b"{}", tls=self.tls)


def vault_error(resp: "Response", what: str) -> SourceError:
    """Vault's {"errors": [...]} as one line with the status."""
    try:
        errors = scan(resp.body).get("errors") or []
        text = "; ".join(str(e) for e in errors)
    except (ValueError, AttributeError):
        text = resp.error_text()
    text = " ".join(redact(text).split())[:300]  # redacted before the cut (see error_text)
    return SourceError(f"{what}: HTTP {resp.status}" + (f": {text}" if text else ""),
                       missing=resp.status == 404)


def _q(path):
    return quote(path, safe="/?=&")

