"""Client-side TLS contexts with one trust-store policy for every endpoint.

`client_context()` always verifies certificates and host names.  Trust, first
match wins:

1. the endpoint's own CA (`cafile`/`capath`/`cadata`: a private CA, e.g.
   Vault's VAULT_CACERT or a cluster's CA), and nothing else;
2. SSL_CERT_FILE / SSL_CERT_DIR, as OpenSSL-based programs honour them;
3. the image's own bundle at the usual path of its distribution;
4. the bundle embedded in the static binary (shim.net.cabundle), so a
   FROM-scratch image still verifies public endpoints.

`trust_source()` names the store the same arguments select, for error messages
(`verify_failed()` builds the one-line hint).  Hand-written rather than
ssl.create_default_context(): that one ends at OpenSSL's compiled-in paths,
which do not exist in most images and never reach an embedded bundle.
"""

import os

from shim.errors import REASON_SETUP, ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import ssl
    from typing import Mapping

# The image's bundle: Debian/Ubuntu/distroless/Alpine, RHEL/Fedora (two
# layouts), openSUSE, Alpine/BSD's cert.pem.
IMAGE_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)
EMBEDDED = "embedded bundle"
FIX = "set SSL_CERT_FILE or the endpoint's CA option"


def _choose(cafile, capath, cadata, environ):
    """(description, load_verify_locations kwargs) for the first store that applies."""
    if cafile or capath or cadata:
        what = cafile or capath or "the endpoint's CA data"
        if isinstance(cadata, (bytes, bytearray)) and b"-----BEGIN" in cadata:
            cadata = bytes(cadata).decode("ascii")  # PEM given as bytes; ssl reads bytes as DER
        return f"endpoint CA {what}", {"cafile": cafile, "capath": capath, "cadata": cadata}
    env_file, env_dir = environ.get("SSL_CERT_FILE"), environ.get("SSL_CERT_DIR")
    if env_file or env_dir:
        names = " ".join(f"{k}={v}" for k, v in (("SSL_CERT_FILE", env_file), ("SSL_CERT_DIR", env_dir)) if v)
        return names, {"cafile": env_file or None, "capath": env_dir or None}
    for path in IMAGE_BUNDLES:
        if os.path.isfile(path):
            return f"image bundle {path}", {"cafile": path}
    from shim.net import cabundle

    pem = cabundle.embedded_pem()
    if pem:
        version = cabundle.embedded_version()
        return (f"{EMBEDDED} (ca-certificates {version})" if version else EMBEDDED), {"cadata": pem.decode("ascii")}
    return "none (no CA bundle found)", {}


def trust_source(cafile: "str | None" = None, capath: "str | None" = None, cadata: "str | bytes | None" = None,
                 environ: "Mapping[str, str] | None" = None) -> str:
    """Which trust store client_context() with these arguments uses, as text."""
    return _choose(cafile, capath, cadata, os.environ if environ is None else environ)[0]


def client_context(cafile: "str | None" = None, capath: "str | None" = None, cadata: "str | bytes | None" = None,
                   environ: "Mapping[str, str] | None" = None) -> "ssl.SSLContext":
    """An ssl.SSLContext for clients: verification and host-name checks on, trust as above.

    cadata: PEM (str or bytes) or DER (bytes), as a secret source may hold a CA.
    A store that cannot be read raises ShimError naming it (never a traceback).
    """
    import ssl

    source, where = _choose(cafile, capath, cadata, os.environ if environ is None else environ)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if where:
        try:
            ctx.load_verify_locations(**where)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise ShimError("load trust store", source, ssl_cause(err),
                            "point it at a readable PEM bundle (or directory of hashed certificates)",
                            reason=REASON_SETUP) from None
    ctx.shim_trust_source = source  # type: ignore[attr-defined]  # named in TLS error messages
    return ctx


# OpenSSL's reason codes in words (str(SSLError) is "[X509] PEM lib (_ssl.c:4123)").
REASONS = {
    "NO_CERTIFICATE_OR_CRL_FOUND": "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
    "PEM_LIB": "a PEM block in it cannot be read (truncated, or not base64)",
    "KEY_VALUES_MISMATCH": "the private key does not belong to the certificate",
    "WRONG_VERSION_NUMBER": "the server did not answer in TLS (is it plain http?)",
    "UNSUPPORTED_PROTOCOL": "the server offers only TLS versions older than 1.2",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server does not accept TLS 1.2 or later",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no TLS version or cipher in common with the server",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the client certificate",
    "CERTIFICATE_VERIFY_FAILED": "certificate verify failed",
}


def ssl_cause(err: BaseException) -> str:
    """An exception from ssl (or the file system under it) as a cause in words: no
    "(_ssl.c:NNNN)", no "[X509: ...]" tag, no Python class name."""
    import re

    reason = getattr(err, "reason", None)
    text = str(err)
    if reason is None and "PEM lib" in text:
        reason = "PEM_LIB"
    if reason in REASONS:
        return REASONS[reason]
    if reason:
        return reason.lower().replace("_", " ")
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", re.sub(r"^\[[^\]]*\]\s*", "", text)).strip()
    return text or type(err).__name__


def verify_failed(err: BaseException, source: str) -> str:
    """The cause text for a failed certificate check: what failed, which store, the fix."""
    detail = getattr(err, "verify_message", None) or getattr(err, "reason", None) or str(err)
    return f"certificate verify failed ({detail}); trust store: {source}; {FIX}"
