"""Reading an http(s) URL before anything is sent: scheme, host, port, path.

`urllib.parse.urlsplit` is lenient where a request must not be: `:0` reads as "no port"
(so `or 80` connects to port 80), `:99999` and `:x` raise only when `.port` is asked, with
Python's own wording ("Port could not be cast to integer value as 'x'"), and `[::1` fails
with "Invalid IPv6 URL".  `parse` checks every part once and raises `URLError` whose text is
a one-line cause fit for a message (no Python internals), so a malformed reference is a
usage error before any request, and the client never connects somewhere it was not told.

    target = parse("https://vault.internal:8200/v1/x?y=1")
    target.scheme, target.host, target.port, target.path   # 'https', 'vault.internal', 8200, '/v1/x?y=1'
"""

from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from urllib.parse import SplitResult

DEFAULT_PORTS = {"http": 80, "https": 443}


class URLError(ValueError):
    """A URL that cannot be requested; the message is the cause, one line."""


class Target:
    """Where a request goes: scheme, host (IPv6 without brackets), port, path with query,
    and `userinfo` (the raw `user:password` part, or None)."""

    __slots__ = ("scheme", "host", "port", "path", "userinfo")

    def __init__(self, scheme, host, port, path, userinfo=None):
        self.scheme, self.host, self.port, self.path, self.userinfo = \
            scheme, host, port, path, userinfo

    def __repr__(self) -> str:  # never the userinfo
        return f"Target({self.scheme}://{self.host}:{self.port})"


def parse(url: str, schemes: "tuple[str, ...]" = ("http", "https")) -> "Target":
    """A Target for `url`; URLError naming what is wrong (the URL itself is not quoted:
    it may carry a credential in its userinfo or query)."""
    if not isinstance(url, str) or not url:
        raise URLError("empty URL")
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise URLError("the URL contains a space or a control character")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in schemes:
        raise URLError(f"unsupported URL scheme {show(scheme) if sep else '(none)'}; use "
                       + " or ".join(f"{s}://" for s in schemes))
    netloc = rest
    for stop in "/?#":
        netloc = netloc.partition(stop)[0]
    userinfo, at, hostport = netloc.rpartition("@")
    if "[" in userinfo or "]" in userinfo:  # as urlsplit refuses it: brackets are the host's
        raise URLError("malformed URL: '[' or ']' before the '@' of the host")
    host, port = _host_port(hostport)
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    # Path and query as urlsplit reads them (no space or control character is left to
    # strip): without importing urllib.parse, a few ms of a start that fetches over http(s).
    path, _, query = rest[len(netloc):].partition("#")[0].partition("?")
    path = (path or "/") + (f"?{query}" if query else "")
    return Target(scheme, host, port, path, userinfo if at else None)


def split(text: str) -> "tuple[SplitResult, int | None]":
    """(urllib.parse.urlsplit(text), port or None) for URLs of any scheme (sinks, relay and
    heartbeat addresses); URLError with a cause fit for a message where urlsplit's own texts
    ("Port could not be cast to integer value as 'x'", "Invalid IPv6 URL") are Python's.
    The host may be empty (`tcp-listen://:9000`) and the port 0: the caller decides; an
    http(s) URL is read as `parse` reads it (it is going to be requested)."""
    from urllib.parse import urlsplit

    hostport = text.partition("://")[2] if "://" in text else ""
    for stop in "/?#":
        hostport = hostport.partition(stop)[0]
    hostport = hostport.rpartition("@")[2]
    if hostport and text.partition("://")[0].lower() in DEFAULT_PORTS:
        parse(text)  # an http(s) URL is going to be requested: no port 0 (no host: the caller's)
    port = _host_port(hostport, empty_host=True, zero=True)[1] if hostport else None
    try:
        return urlsplit(text), port
    except ValueError:  # pragma: no cover (_host_port checked what urlsplit checks)
        raise URLError("malformed URL") from None


def _host_port(hostport, empty_host=False, zero=False):
    """(host, port or None) from `host`, `host:port`, `[v6]`, `[v6]:port`."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise URLError("the host's '[' has no closing ']' (write [::1]:8200)")
        host, after = hostport[1:close], hostport[close + 1:]
        import ipaddress  # only for a bracketed host: most URLs never pay for it

        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise URLError(f"{show(host)} in [...] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise URLError("unexpected text after the host's ']'")
        port_text = after[1:] if after else ""
    else:
        if "[" in hostport or "]" in hostport:
            raise URLError("a '[' or ']' outside an IPv6 host (write [::1]:8200)")
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, ""
        elif ":" in host:  # h:8200: or a bare IPv6 address: no host a connection can use
            raise URLError(f"host {show(host)} has a ':' (an IPv6 address goes in [...], "
                           "as [::1]:8200)")
    if not host and not empty_host:
        raise URLError("missing host")
    if port_text == "":
        return host, None  # `host:` is the default port (RFC 3986, section 3.2.3)
    if not (port_text.isascii() and port_text.isdigit()):
        raise URLError(f"port {show(port_text)} is not a number; use 1 to 65535")
    port = int(port_text)
    if not (0 if zero else 1) <= port <= 65535:
        raise URLError(f"port {port} is out of range; use 1 to 65535")
    return host, port


def redacted(url: str) -> str:
    """A URL for messages: no userinfo, query or fragment (each could carry a credential);
    never raises, whatever the text."""
    scheme, sep, rest = url.partition("://")
    rest = rest.partition("#")[0].partition("?")[0]
    netloc, slash, path = rest.partition("/")
    shown = f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"
    return shown if shown.isprintable() else repr(shown)[1:-1]
