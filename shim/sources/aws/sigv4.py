"""AWS Signature Version 4, by hand.

Why not botocore.auth: importing it (with botocore.credentials) loads most of botocore,
87.6 ms of CPU and 2.04 MiB of bytecode in the binary (21.9 MiB installed with its service
models) against 14.7 ms and 349 KiB for this module and credentials.py (scripts/bench
alternatives; docs/architecture.md), far too heavy for a static entrypoint binary; the
algorithm itself is ~100 lines of hashlib/hmac.  It is proven against AWS's published
SigV4 test suite (tests/unit/sigv4_vectors, see SOURCE.md there) and, end to end, against
moto with signature checking on (tests/secrets).

Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
"""

import hashlib
import hmac
import time
from urllib.parse import quote, unquote, urlsplit

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.aws.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNRESERVED = "-_.~"


def aws_quote(text: str, safe: str = "") -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (and `safe`)."""
    return quote(text, safe=UNRESERVED + safe)


def canonical_uri(path: str, normalize: bool = True) -> str:
    """The path as signed.  Non-S3 services sign the sent (already encoded) path encoded again;
    S3 passes normalize=False and double_encode=False via `canonical_uri_s3`."""
    if not path:
        path = "/"
    if normalize:
        path = _normalize(path)
    return aws_quote(path, safe="/")


def canonical_uri_s3(path: str) -> str:
    """S3 signs the path exactly as sent: no normalisation, no second encoding."""
    return path or "/"


def _normalize(path):
    """RFC 3986 dot-segment removal with empty segments collapsed, exactly as botocore's
    `utils.remove_dot_segments` (what every boto3 request to AWS signs): a trailing slash
    is kept only when the path itself ends in '/' (`/a/b/..` -> `/a`, `/a/b/` -> `/a/b/`)."""
    out: list = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def canonical_query(query: str) -> str:
    """Sorted `k=v` pairs, each side decoded then re-encoded the AWS way."""
    pairs = []
    for part in query.split("&") if query else ():
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((aws_quote(unquote(key)), aws_quote(unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers: "list[tuple[str, str]]") -> "tuple[str, str]":
    """`headers`: (name, value) pairs.  -> (canonical block, signed-headers list)."""
    merged: dict = {}
    for name, value in headers:
        name = name.lower().strip()
        value = " ".join(str(value).split())  # trim and collapse runs of whitespace
        merged.setdefault(name, []).append(value)
    names = sorted(merged)
    block = "".join(f"{n}:{','.join(merged[n])}\n" for n in names)
    return block, ";".join(names)


def signing_key(secret_key: str, datestamp: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret_key).encode(), datestamp)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Signed:
    """Everything computed while signing (the test suite checks each step)."""

    __slots__ = ("headers", "canonical_request", "string_to_sign", "signature")

    def __init__(self, headers, canonical_request, string_to_sign, signature):
        self.headers = headers
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.signature = signature


def sign(method: str, url: str, headers: "list[tuple[str, str]]", body: bytes, creds: "Credentials",
         region: str, service: str, now: "float | None" = None, sign_body: bool = False,
         s3: bool = False, normalize: bool = True) -> "Signed":
    """Sign a request.

    headers  list of (name, value) pairs the request will carry (Host is added from the URL
             when absent); the result's `headers` is that list plus X-Amz-Date,
             X-Amz-Security-Token (when the credentials have one), x-amz-content-sha256
             (when sign_body or s3) and Authorization.
    creds    object with access_key, secret_key, token
    """
    now = time.time() if now is None else now
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    datestamp = amz_date[:8]
    parts = urlsplit(url)
    headers = list(headers)
    if not any(n.lower() == "host" for n, _ in headers):
        host = parts.hostname or ""
        if parts.port and parts.port != (443 if parts.scheme == "https" else 80):
            host = f"{host}:{parts.port}"
        headers.append(("Host", host))
    headers.append(("X-Amz-Date", amz_date))
    if creds.token:
        headers.append(("X-Amz-Security-Token", creds.token))
    payload_hash = hashlib.sha256(body or b"").hexdigest()
    if sign_body or s3:
        headers.append(("x-amz-content-sha256", payload_hash))
    block, signed_names = canonical_headers(headers)
    path = canonical_uri_s3(parts.path) if s3 else canonical_uri(parts.path, normalize)
    canonical_request = "\n".join((method.upper(), path, canonical_query(parts.query), block,
                                   signed_names, payload_hash))
    scope = f"{datestamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join((ALGORITHM, amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()))
    signature = hmac.new(signing_key(creds.secret_key, datestamp, region, service),
                         string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers.append(("Authorization", f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
                                     f"SignedHeaders={signed_names}, Signature={signature}"))
    return Signed(headers, canonical_request, string_to_sign, signature)
