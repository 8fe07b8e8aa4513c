"""The CA bundle baked into the static binary (Debian's ca-certificates, pinned
in build/inputs.lock).

scripts/build puts it into the binary's archive as shim/net/cacert.pem, its
first line naming the package version.  From a source install there is none:
both functions return None and shim.net.tls uses the system's trust store.
"""

_PREFIX = b"# ca-certificates "
_cache: list = []


def embedded_pem() -> "bytes | None":
    """The bundle's PEM bytes, or None when this is not a built binary."""
    if not _cache:
        from shim.util.resources import get_data

        _cache.append(get_data("shim.net", "cacert.pem") or None)
    return _cache[0]


def embedded_version() -> "str | None":
    """The ca-certificates version of the embedded bundle (e.g. "20250419~deb12u2"), or None."""
    pem = embedded_pem()
    if not pem or not pem.startswith(_PREFIX):
        return None
    return pem[len(_PREFIX):].split(None, 1)[0].decode("ascii", "replace")
