"""The `idna` codec for ASCII host names, when the build has no real one.

CPython encodes every str host name with the `idna` codec before getaddrinfo
(socket.getaddrinfo, create_connection, http.client).  The real codec needs
unicodedata, which the static build leaves out (1.1 MB), so there "127.0.0.1"
fails with LookupError.  ASCII names need no IDNA processing at all: this fallback
passes them through and refuses non-ASCII names with a clear UnicodeError.
"""

import codecs


def ensure():
    """Make `idna` available (a no-op where the stdlib codec can load)."""
    import importlib.util

    # Asked without importing: the real codec pulls in unicodedata (a megabyte of tables).
    if importlib.util.find_spec("unicodedata") is None:
        codecs.register(_search)


def _encode(text, errors="strict"):
    return text.encode("ascii"), len(text)  # non-ASCII: UnicodeEncodeError, a ValueError


def _decode(data, errors="strict"):
    return bytes(data).decode("ascii"), len(data)


def _search(name):
    if name != "idna":
        return None
    return codecs.CodecInfo(_encode, _decode, name="idna")
