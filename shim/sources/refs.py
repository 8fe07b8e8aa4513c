"""References to secrets and config: vals' `ref+` URIs and secrets-init's bare AWS ARNs.

    ref+vault://secret/app#/password            Vault/OpenBao logical path, KV v1 or v2
    ref+awssecrets://prod/db?version_stage=AWSPREVIOUS#/password
    ref+awsssm://prod/app/api-key                SSM parameter /prod/app/api-key
    ref+awsssm:///prod/app/                      trailing slash: every parameter under the path
    ref+s3://bucket/key#/a/b                     S3 object
    ref+https://config.internal/v1/app.json#/feature   (and ref+http://)
    ref+file:///etc/x.json#/k                    ref+file://relative/path too
    ref+env://NAME
    ref+gcpsecrets://PROJECT/SECRET?version=N    Google Cloud Secret Manager (default: latest)
    ref+azurekeyvault://VAULT-NAME/SECRET[/VERSION]   Azure Key Vault
    gcp:secretmanager:projects/P/secrets/S[/versions/V]   (secrets-init; with --env-refs all)
    arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key[:version-stage[:version-id]]]
    arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:version]

The fragment is a JSON pointer (RFC 6901: `~1` is `/`, `~0` is `~`, percent-decoded first
as section 6 says for URI fragments) that selects a value from the JSON document; no fragment
means the whole value.  Query parameters are those vals has for the scheme that shim
implements (vals' auth parameters are environment settings here: a secret id does not belong
in a reference); unknown ones are an error because a typo (`?regoin=`) must not silently
fetch from the wrong place.
Every scheme also takes `?optional=true` and `?default=TEXT` (URL-encoded): when the object or
key is missing (a 404, an absent key; never a 403, a TLS error or a timeout) the target is
left out, or gets TEXT.  They are taken out of the query before the scheme sees it.
Parsing is pure: nothing here touches the network.
"""

from shim.util.text import show
from shim.util.urlcode import is_name, parse_qsl, unquote

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

PREFIX = "ref+"

# scheme -> (source label for messages, accepted query parameters)
SCHEMES = {
    "vault": ("vault", {"address", "namespace", "version"}),
    "openbao": ("vault", {"address", "namespace", "version"}),
    "awssecrets": ("aws-secretsmanager", {"region", "version_stage", "version_id", "role_arn"}),
    "awsssm": ("aws-ssm", {"region", "role_arn", "recursive"}),
    "s3": ("aws-s3", {"region", "version_id", "role_arn"}),
    "https": ("https", None),  # the query belongs to the URL
    "http": ("http", None),
    "file": ("file", set()),
    "env": ("env", set()),
    "gcpsecrets": ("gcp-secretmanager", {"version"}),
    "azurekeyvault": ("azure-keyvault", set()),
}
# Per-reference parameters every scheme takes (vals' `optional`; `default` as a fallback text).
MISSING_PARAMS = ("optional", "default")
GCP_PREFIX = "gcp:secretmanager:"

# The ARN and GCP name grammars: compiled on first use, so that a start without such a
# reference never imports `re` (several ms in the static binary; see shim/util/urlcode.py).
_PATTERNS = {
    "sm_arn": r"^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]+):(\d{12}):secret:([^:#]+)"
              r"(?::([^:#]*))?(?::([^:#]*))?(?::([^:#]*))?(?:#(.*))?$",
    "ssm_arn": r"^arn:(aws[a-z-]*):ssm:([a-z0-9-]+):(\d{12}):parameter(/?[^:#]+)(?::(\d+))?(?:#(.*))?$",
    "gcp_name": r"^projects/([^/#?]+)/secrets/([^/#?]+)(?:/versions/([^/#?]+))?(?:#(.*))?$",
}
_COMPILED: dict = {}


def _pattern(name):
    if name not in _COMPILED:
        import re

        _COMPILED[name] = re.compile(_PATTERNS[name])
    return _COMPILED[name]


class RefError(ValueError):
    """A reference that cannot be parsed; the message is the cause, one line."""


class Ref:
    """A parsed reference.

    scheme   the `ref+` scheme ("vault", "awssecrets", ...)
    source   label for messages ("vault", "aws-ssm", ...)
    path     what to read: Vault path, secret id or ARN, SSM name or path, bucket/key,
             the full URL (http/https), file path, or variable name
    query    dict of the vals query parameters
    pointer  tuple of JSON-pointer tokens, or None for the whole value
    raw      the reference as written (references are not secret; URLs are shown redacted)
    optional `?optional=true`: a missing object or key leaves the target out
    default  `?default=TEXT`: the value when the object or key is missing (None: no default)
    """

    __slots__ = ("scheme", "source", "path", "query", "pointer", "raw", "optional", "default")

    def __init__(self, scheme, path, query=None, pointer=None, raw="", optional=False,
                 default=None):
        self.scheme = scheme
        self.source = SCHEMES[scheme][0]
        self.path = path
        self.query = query or {}
        self.pointer = pointer
        self.raw = raw
        self.optional = optional
        self.default = default

    @property
    def tolerates_missing(self) -> bool:
        """A missing object or key is not an error (?optional=true or ?default=)."""
        return self.optional or self.default is not None

    @property
    def is_tree(self) -> bool:
        """Names a set of values (SSM path with trailing slash) rather than one."""
        return self.scheme == "awsssm" and self.path.endswith("/")

    @property
    def region(self) -> "str | None":
        return self.query.get("region")

    def display(self) -> str:
        """The reference for messages: http(s) URLs lose userinfo and query."""
        if self.scheme in ("http", "https"):
            head, _, _ = self.raw.partition("?")
            head = head.partition("#")[0]
            scheme, _, rest = head.partition("://")
            return f"{scheme}://{rest.rpartition('@')[2]}"
        return self.raw

    def __repr__(self) -> str:
        return f"Ref({self.display()!r})"

    def __eq__(self, other):
        return isinstance(other, Ref) and (self.scheme, self.path, self.query, self.pointer) == (
            other.scheme, other.path, other.query, other.pointer)

    def __hash__(self):
        return hash((self.scheme, self.path, tuple(sorted(self.query.items())), self.pointer))


def is_ref(value: object) -> bool:
    """True when `value` looks like a reference (what env values are resolved in place)."""
    return isinstance(value, str) and (
        value.startswith(PREFIX) or value.startswith(GCP_PREFIX) or value.startswith("arn:aws")
        and (":secretsmanager:" in value[:40] or ":ssm:" in value[:20]))


def parse(text: str) -> "Ref":
    """Parse one reference; RefError with a one-line cause when malformed."""
    if not isinstance(text, str) or not text:
        raise RefError("empty reference")
    if any(c in text for c in "\n\r\0"):
        raise RefError("reference contains a line break or NUL")
    if text.startswith("arn:"):
        return _parse_arn(text)
    if text.startswith(GCP_PREFIX):
        return _parse_gcp_name(text)
    if not text.startswith(PREFIX):
        raise RefError("not a reference: expected ref+SCHEME://... or an AWS secret/parameter ARN")
    scheme, sep, rest = text[len(PREFIX):].partition("://")
    if not sep:
        raise RefError("missing '://' after the scheme")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise RefError(f"unknown scheme {show(scheme)}; known: {', '.join(sorted(SCHEMES))}")
    rest, _, fragment = rest.partition("#")
    pointer = _fragment(fragment)
    allowed = SCHEMES[scheme][1]
    rest, _, qs = rest.partition("?")
    qs, optional, default = _take_missing_params(qs)
    if allowed is None:  # http(s): the whole URL, query included
        if not rest or rest.startswith("/"):
            raise RefError("missing host in URL")
        url = f"{scheme}://{rest}" + (f"?{qs}" if qs else "")
        _check_url(url, "URL")
        return Ref(scheme, url, {}, pointer, text, optional, default)
    query = _parse_query(qs, allowed, scheme)
    path = unquote(rest)
    return Ref(scheme, _normalise_path(scheme, path), query, pointer, text, optional, default)


def _take_missing_params(qs):
    """(the query without optional/default, optional, default): shim's own parameters, taken
    out textually so an http(s) URL keeps the rest of its query as written."""
    kept, optional, default = [], False, None
    for part in qs.split("&") if qs else ():
        key, eq, value = part.partition("=")
        if key == "optional":
            value = unquote(value.replace("+", " "))
            if value not in ("true", "false"):
                raise RefError(f"?optional= takes true or false, got {show(value)}")
            optional = value == "true"
        elif key == "default":
            if not eq:
                raise RefError("?default needs a value: ?default=TEXT (URL-encoded)")
            default = unquote(value.replace("+", " "))
        else:
            kept.append(part)
    return "&".join(kept), optional, default


def _parse_query(qs, allowed, scheme):
    query = {}
    allowed = set(allowed) | set(MISSING_PARAMS)
    for key, value in parse_qsl(qs):  # blank values kept, as urllib.parse.parse_qsl(keep_blank_values=True)
        if key in MISSING_PARAMS:  # pragma: no cover (taken out before)
            continue
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise RefError(f"unknown query parameter {show(key)} for ref+{scheme} (known: {known})")
        query[key] = value
    if "address" in query:
        _check_url(query["address"], "?address=")
    if scheme in ("vault", "openbao") and "version" in query and \
            not (query["version"].isascii() and query["version"].isdigit()):
        raise RefError(f"?version= must be a whole number (a KV v2 version), got "
                       f"{show(query['version'])}")
    if query.get("recursive", "true") not in ("true", "false"):
        raise RefError(f"?recursive= takes true or false, got {show(query['recursive'])}")
    return query


def _check_url(url, what):
    """An http(s) URL read as the client will read it: RefError (exit 125) before any request."""
    from shim.net.url import URLError, parse as parse_url
    try:
        parse_url(url)
    except URLError as err:
        raise RefError(f"malformed {what}: {err}") from None


def _fragment(fragment):
    """The JSON pointer of a `#fragment` (None without one).  A second '#' is no part of
    any URI (RFC 3986, section 3.5): refused, not read as a key that ends in '#'."""
    if "#" in fragment:
        raise RefError(f"a second '#' in the fragment #{fragment[:60]}; write a '#' that is "
                       "part of a key as %23")
    return parse_pointer(unquote(fragment)) if fragment else None


def _normalise_path(scheme, path):
    if scheme in ("vault", "openbao"):
        path = path.strip("/")
        if not path or "//" in path:
            raise RefError("missing or malformed Vault path (expected MOUNT/PATH)")
        return path
    if scheme == "awssecrets":
        if not path.strip("/"):
            raise RefError("missing secret name")
        return path
    if scheme == "awsssm":
        if not path.startswith("/"):
            path = "/" + path
        if path == "/" or "//" in path:
            raise RefError("missing or malformed parameter name or path")
        return path
    if scheme == "s3":
        bucket, _, key = path.partition("/")
        if not bucket or not key:
            raise RefError("expected ref+s3://BUCKET/KEY")
        return path
    if scheme == "file":
        if not path:
            raise RefError("missing file path")
        return path
    if scheme == "env":
        if not is_name(path):
            raise RefError("expected ref+env://NAME with NAME a variable name")
        return path
    if scheme == "gcpsecrets":
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise RefError("expected ref+gcpsecrets://PROJECT/SECRET[?version=N]")
        return "/".join(parts)
    if scheme == "azurekeyvault":
        parts = path.strip("/").split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise RefError("expected ref+azurekeyvault://VAULT-NAME/SECRET[/VERSION]")
        if not _vault_name(parts[0]) or not _vault_name(parts[1]):
            raise RefError("Key Vault and secret names are letters, digits and '-'")
        return "/".join(parts)
    raise RefError(f"unknown scheme {show(scheme)}")  # pragma: no cover (SCHEMES guards)


def _vault_name(text):
    """Azure Key Vault and secret names: [A-Za-z0-9-]{1,127}."""
    return 1 <= len(text) <= 127 and text.isascii() and text.replace("-", "a").isalnum()


def _parse_arn(text):
    match = _pattern("sm_arn").match(text)
    if match:
        _, region, _, name, json_key, stage, version_id, fragment = match.groups()
        arn_end = text.index(":secret:") + len(":secret:") + len(name)
        query = {"region": region}
        if stage:
            query["version_stage"] = stage
        if version_id:
            query["version_id"] = version_id
        pointer = _fragment(fragment or "")
        if pointer is None and json_key:  # the ECS form: ARN:json-key:version-stage:version-id
            pointer = (json_key,)
        return Ref("awssecrets", text[:arn_end], query, pointer, text)
    match = _pattern("ssm_arn").match(text)
    if match:
        _, region, _, _, version, fragment = match.groups()
        name = text.partition("#")[0]  # SSM accepts the ARN (and `:version`) as a name
        pointer = _fragment(fragment or "")
        return Ref("awsssm", name, {"region": region}, pointer, text)
    raise RefError("unsupported ARN: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME "
                   "or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME")


def _parse_gcp_name(text):
    """secrets-init's gcp:secretmanager:projects/P/secrets/S[/versions/V] (`latest` default)."""
    match = _pattern("gcp_name").match(text[len(GCP_PREFIX):])
    if not match:
        raise RefError("expected gcp:secretmanager:projects/PROJECT/secrets/SECRET"
                       "[/versions/VERSION]")
    project, secret, version, fragment = match.groups()
    query = {"version": version} if version else {}
    pointer = _fragment(fragment or "")
    return Ref("gcpsecrets", f"{project}/{secret}", query, pointer, text)


# -- JSON pointer (RFC 6901) ------------------------------------------------------------
def parse_pointer(fragment: str) -> "tuple[str, ...]":
    """'/a/b~1c' -> ('a', 'b/c'); a fragment without a leading '/' is one key (vals allows it)."""
    if fragment == "/":
        return ("",)
    if not fragment.startswith("/"):
        fragment = "/" + fragment
    tokens = []
    for token in fragment[1:].split("/"):
        if any(part[:1] not in ("0", "1") for part in token.split("~")[1:]):  # '~' not before 0 or 1
            raise RefError("bad JSON pointer escape: '~' must be followed by 0 or 1")
        tokens.append(token.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def format_pointer(tokens: "tuple[str, ...]") -> str:
    """('a', 'b/c') -> '/a/b~1c'."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


_MISSING = object()


def _array_index(token):
    """RFC 6901 array index: 0 or digits without a leading zero (ASCII only)."""
    return token.isascii() and token.isdigit() and (token == "0" or token[0] != "0")


def select(document: "Any", pointer: "tuple[str, ...]") -> "Any":
    """Apply a pointer to a parsed JSON document; KeyError(naming the token) when absent."""
    node = document
    for depth, token in enumerate(pointer):
        if isinstance(node, dict):
            node = node.get(token, _MISSING)
        elif isinstance(node, list) and _array_index(token):
            index = int(token)
            node = node[index] if index < len(node) else _MISSING
        else:
            node = _MISSING
        if node is _MISSING:
            raise KeyError(format_pointer(pointer[: depth + 1]))
    return node
