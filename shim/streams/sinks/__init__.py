"""Log sinks: where records go besides the console.

`parse(url)` turns a `--log-sink` URL into a sink (a one-line usage error, exit
125, for anything it cannot read).  Every sink is a `Sink`: a bounded buffer that
the loop's thread fills (`put`, never blocking the delegate for more than
`BLOCK_LIMIT`) and one writer thread that empties it into the destination,
reconnecting with backoff.  A thread per sink, not the loop, does the writing
because a file write can block for as long as a disk or NFS server likes, and a
slow socket must never hold the loop that forwards signals and reads the pipes.
"""

from urllib.parse import parse_qs, urlsplit

from shim.config.kinds import parse_size
from shim.errors import usage_error
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.streams.sinks.base import Sink

FIX = ("use file:///PATH[?max_bytes=&backups=], tcp://HOST:PORT, unix:///PATH, "
       "udp://HOST:PORT or http(s)://HOST[:PORT]/PATH[?token_file=&gzip=0]")


def parse(url: str, **common: "Any") -> "Sink":
    """A sink for `url` (not started).  Raises a usage ShimError naming the URL's scheme only."""
    where = "option --log-sink"
    from shim.net.url import URLError, split
    try:
        parts, port = split(url)
    except URLError as err:
        raise usage_error(where, f"cannot read URL: {err}", FIX) from None
    try:
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True,
                                                strict_parsing=bool(parts.query)).items()}
    except ValueError:  # its text quotes the query, which may hold a token
        raise usage_error(where, "cannot read the URL's query: write ?KEY=VALUE&KEY=VALUE",
                          FIX) from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        from shim.streams.sinks.file import FileSink

        if not parts.path or parts.netloc not in ("", "localhost"):
            raise usage_error(where, "a file URL needs an absolute path (file:///var/log/x)", FIX)
        _only(query, ("max_bytes", "backups"), where)
        try:
            max_bytes = parse_size(query.get("max_bytes", "0"))
            backups = parse_size(query.get("backups", "3"), {"": 1})
        except ValueError:
            raise usage_error(where, "max_bytes and backups must be whole numbers", FIX) from None
        return FileSink(url, parts.path, max_bytes, backups, **common)
    if scheme in ("tcp", "udp"):
        if not parts.hostname or not port or parts.path not in ("", "/"):
            raise usage_error(where, f"a {scheme} URL needs a host and a port (not 0)", FIX)
        _only(query, (), where)
        from shim.streams.sinks.socket import DatagramSink, StreamSink

        cls = StreamSink if scheme == "tcp" else DatagramSink
        return cls(url, ("tcp" if scheme == "tcp" else "udp", parts.hostname, port), **common)
    if scheme == "unix":
        if not parts.path or parts.netloc:
            raise usage_error(where, "a unix URL needs an absolute socket path (unix:///run/x.sock)",
                              FIX)
        _only(query, (), where)
        from shim.streams.sinks.socket import StreamSink

        return StreamSink(url, ("unix", parts.path, None), **common)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise usage_error(where, f"an {scheme} URL needs a host", FIX)
        _only(query, ("token_file", "gzip"), where)
        from shim.config.kinds import parse_bool
        from shim.streams.sinks.http import HttpSink

        try:
            gzip = parse_bool(query.get("gzip", "1"))
        except ValueError:
            raise usage_error(where, "gzip must be true or false", FIX) from None
        target = parts._replace(query="").geturl()
        return HttpSink(url, target, query.get("token_file"), gzip, **common)
    raise usage_error(where, f"unknown sink scheme {scheme + '://' if scheme else '(none)'}", FIX)


def _only(query, allowed, where):
    for key in query:
        if key not in allowed:
            raise usage_error(where, f"unknown sink parameter {show(key)}", FIX)


def safe_name(url: str) -> str:
    """The URL without credentials or query (token file paths, user:password) for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return f"{parts.scheme}://{host}{parts.path}"
    except ValueError:
        return "(unreadable URL)"
