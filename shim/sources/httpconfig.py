"""HTTP(S) config service: GET the URL, return the body (JSON, dotenv or text: the target
decides how to read it).

Settings: SHIM_HTTP_TOKEN_FILE (or the `http_token_file` option) sends
`Authorization: Bearer <file contents>`, re-read on every fetch so a rotated token works;
SHIM_HTTP_CACERT adds a CA for https.  HTTPS_PROXY/HTTP_PROXY/NO_PROXY apply (shim.net.proxy).
"""

from shim.sources.base import http_failure, read_secret_file


def fetch(ref, ctx):
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    token_file = ctx.setting("http_token_file", "SHIM_HTTP_TOKEN_FILE")
    if token_file:
        headers["Authorization"] = "Bearer " + read_secret_file(token_file, "bearer token file",
                                                                one_line=True)
    tls = None
    if ref.scheme == "https":
        tls = ctx.shared("http-tls", lambda: _tls(ctx))
    resp = ctx.request("GET", ref.path, headers=headers, tls=tls)
    if not resp.ok:
        raise http_failure(resp)
    return resp.body


def _tls(ctx):
    from shim.sources.base import tls_context
    return tls_context(ctx.setting("http_cacert", "SHIM_HTTP_CACERT"), what="CA")


