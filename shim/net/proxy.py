"""Which proxy a URL goes through: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl reads them.

Lower-case names win over upper-case ones (curl and requests agree on that).  NO_PROXY is a
comma-separated list of host names (a suffix match on a dot boundary, a leading dot or `*.`
allowed), IP addresses, CIDR blocks, optional `:port`, or `*` for everything.
"""

from shim.util.urlcode import unquote  # as urllib.parse.unquote, without importing it

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping


class Proxy:
    """A proxy endpoint: host, port and the Proxy-Authorization header it needs, if any."""

    __slots__ = ("host", "port", "auth")

    def __init__(self, host, port, auth=None):
        self.host = host
        self.port = port
        self.auth = auth

    def __repr__(self) -> str:  # never shows credentials
        return f"Proxy({self.host}:{self.port})"


def _get(env, name):
    return env.get(name.lower()) or env.get(name.upper()) or ""


def parse_proxy(value: str) -> Proxy:
    """`http://user:pass@host:port` (scheme optional) -> Proxy; ValueError when unusable."""
    if "://" not in value:
        value = "http://" + value
    from shim.net.url import URLError, parse
    try:
        target = parse(value.rstrip("/"))
    except URLError as err:
        raise ValueError(f"proxy URL: {err}; write http://[user:password@]host[:port]") from None
    auth = None
    if target.userinfo is not None:
        user, _, password = target.userinfo.partition(":")
        raw = f"{unquote(user)}:{unquote(password)}".encode()
        import base64  # only for a proxy with credentials

        auth = "Basic " + base64.b64encode(raw).decode()
    return Proxy(target.host, target.port, auth)


def bypass(host: str, port: int, no_proxy: str) -> bool:
    """True when NO_PROXY says `host[:port]` is reached directly."""
    if not no_proxy:
        return False
    import ipaddress  # NO_PROXY may name networks; read only when it is set

    host = host.lower().strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    for entry in no_proxy.replace(" ", "").lower().split(","):
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.count(":") == 1 and not entry.startswith("["):
            entry, _, p = entry.partition(":")
            entry_port = int(p) if p.isdigit() else None
        entry = entry.strip("[]")
        if entry_port is not None and entry_port != port:
            continue
        if addr is not None:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip("*").lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def proxy_for(scheme: str, host: str, port: int, env: "Mapping[str, str]") -> "Proxy | None":
    """The Proxy for a request to scheme://host:port, or None to connect directly."""
    if bypass(host, port, _get(env, "no_proxy")):
        return None
    value = _get(env, "https_proxy") if scheme == "https" else _get(env, "http_proxy")
    if not value:
        return None
    return parse_proxy(value)
