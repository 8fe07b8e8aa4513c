"""`shim __selftest`: hidden checks of a built binary, run by tests/build (see docs/freeze.md).

    shim __selftest imports                  import every shim module and the declared extras;
                                             JSON report on stdout, exit 1 when any failed
    shim __selftest fetch URL [--cafile F]   GET URL over HTTP or HTTPS (shim.net.tls trust
                                             policy, F as the endpoint's CA); body on stdout

The import check runs inside the binary, against its own archive and builtins,
which is what a host Python cannot tell.  `fetch` exercises name resolution,
TLS and the trust store without the secrets feature.
"""

import sys

from shim.errors import REASON_SETUP, ShimError

# Not imported by any shim module yet, but promised importable in the binary
# (docs/freeze.md): asyncio for later network work, the C accelerators.
EXTRA_MODULES = ("asyncio", "ssl", "_ssl", "_hashlib", "hashlib", "unicodedata", "encodings.idna",
                 "json", "_json", "resource", "_contextvars", "_asyncio", "_queue", "setproctitle",
                 "http.client", "urllib.parse")
EXIT_FAILED = 1
FETCH_TIMEOUT = 20


def _shim_module_names():
    import pkgutil

    import shim

    names = ["shim"]
    for info in pkgutil.walk_packages(shim.__path__, "shim.", onerror=lambda name: None):
        if not info.name.endswith("__main__"):  # runs the CLI when imported
            names.append(info.name)
    return sorted(names)


def _import_all():
    import importlib

    failed = {}
    names = _shim_module_names() + list(EXTRA_MODULES)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a report of every failure is the point
            failed[name] = f"{type(err).__name__}: {err}"
    return names, failed


def _features():
    """What the network path needs beyond importing: idna, C JSON, OpenSSL."""
    out: dict[str, object] = {}
    try:
        out["idna"] = "bücher.example".encode("idna").decode()
    except LookupError as err:
        out["idna"] = f"LookupError: {err}"
    try:
        import json.encoder
        out["json_c_encoder"] = json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    except ImportError:
        out["json_c_encoder"] = False
    try:
        import ssl
        out["openssl"] = ssl.OPENSSL_VERSION
    except ImportError:
        out["openssl"] = None
    return out


def _startup_origins(modules):
    """Where each module loaded before this subcommand ran came from (builtin, frozen, archive)."""
    out: dict = {}
    for _name, module in sorted(modules.items()):
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None) or "?"
        kind = origin if origin in ("built-in", "frozen") else \
            "archive" if ".pyc" in origin or "/" in origin else origin
        out[kind] = out.get(kind, 0) + 1
    return out


def imports(argv: "list[str]") -> int:
    from shim.util import jsonio

    before = dict(sys.modules)
    names, failed = _import_all()
    report = {"imported": len(names) - len(failed), "failed": failed, "features": _features(),
              "loaded_before": _startup_origins(before)}
    sys.stdout.buffer.write(jsonio.dumps(report, indent=True) + b"\n")
    return EXIT_FAILED if failed else 0


def fetch(argv: "list[str]") -> int:
    import http.client
    import socket
    import ssl
    import urllib.parse

    from shim.net import tls

    if not argv:
        raise ShimError("parse", "__selftest fetch", "no URL", "give one: __selftest fetch URL [--cafile F]")
    url, cafile = argv[0], None
    if argv[1:2] == ["--cafile"] and len(argv) == 3:
        cafile = argv[2]
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        ctx = tls.client_context(cafile=cafile)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=FETCH_TIMEOUT,  # type: ignore[arg-type]
                                           context=ctx)
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=FETCH_TIMEOUT)  # type: ignore[arg-type]
    else:
        raise ShimError("parse", url, "not an http:// or https:// URL", "give a full URL")
    try:
        conn.request("GET", parts.path or "/")
        resp = conn.getresponse()
        body = resp.read()
    except ssl.SSLCertVerificationError as err:
        raise ShimError("fetch", url, tls.verify_failed(err, ctx.shim_trust_source),  # type: ignore[attr-defined]
                         reason=REASON_SETUP) from None
    except socket.gaierror as err:
        raise ShimError("fetch", url, f"cannot resolve {parts.hostname} ({err.strerror})",
                        "check /etc/resolv.conf and /etc/hosts", reason=REASON_SETUP) from None
    except (OSError, http.client.HTTPException) as err:
        raise ShimError("fetch", url, f"{type(err).__name__}: {err}", "check the server", reason=REASON_SETUP) from None
    finally:
        conn.close()
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    return 0 if resp.status < 400 else EXIT_FAILED


MODES = {"imports": imports, "fetch": fetch}


def main(argv: "list[str]") -> int:
    if not argv or argv[0] not in MODES:
        raise ShimError("parse", "__selftest", f"mode must be one of {', '.join(MODES)}", "see docs/freeze.md")
    return MODES[argv[0]](argv[1:])
