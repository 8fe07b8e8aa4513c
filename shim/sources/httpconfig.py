"""HTTP(S) config service: GET the URL, return the body (JSON, dotenv or text: the target
decides how to read it).

Settings: SHIM_HTTP_TOKEN_FILE (or the `http_token_file` option) sends
`Authorization: Bearer <file contents>`, re-read on every fetch so a rotated token works;
SHIM_HTTP_CACERT is the CA for https.  HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply (shim.net.proxy).

Redirects (301, 302, 303, 307, 308) are followed, at most 5, as curl -L and requests do, with
two guards: never from https to http, and the bearer token goes to the first host only.
"""

from urllib.parse import urljoin

from shim.net.url import URLError, parse as parse_url
from shim.sources.base import SourceError, http_failure, read_secret_file

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


def fetch(ref: "Ref", ctx: "Context") -> bytes:
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    token_file = ctx.setting("http_token_file", "SHIM_HTTP_TOKEN_FILE")
    if token_file:
        headers["Authorization"] = "Bearer " + read_secret_file(token_file, "bearer token file",
                                                                one_line=True)
    url = ref.path
    for _ in range(MAX_REDIRECTS + 1):
        tls = ctx.shared("http-tls", lambda: _tls(ctx)) if url.startswith("https:") else None
        resp = ctx.request("GET", url, headers=headers, tls=tls)
        if resp.status not in REDIRECTS or not resp.headers.get("location"):
            break
        try:  # read as the client reads it: a bad port is said in words, never Python's
            target = urljoin(url, resp.headers["location"])
            old, new = parse_url(url), parse_url(target)
        except ValueError as err:  # URLError, or urljoin's own "Invalid IPv6 URL"
            why = err if isinstance(err, URLError) else "the host's '[' has no closing ']'"
            raise SourceError(f"HTTP {resp.status}: the redirect's Location is not a usable "
                              f"URL: {why}") from None
        if old.scheme == "https" and new.scheme != "https":
            raise SourceError(f"HTTP {resp.status}: refusing the redirect from https to "
                              f"{new.scheme}://{new.host}")
        if (new.host.lower(), new.port) != (old.host.lower(), old.port):
            headers.pop("Authorization", None)  # the token is for the host it was set for
        url = target
    else:
        raise SourceError(f"more than {MAX_REDIRECTS} redirects")
    if not resp.ok:
        raise http_failure(resp)
    return resp.body


def _tls(ctx):
    from shim.sources.base import tls_context
    return tls_context(ctx.setting("http_cacert", "SHIM_HTTP_CACERT"), what="CA")


