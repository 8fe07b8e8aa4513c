"""GCP's and Azure's error answers: one line, and never a credential a server reflected
into its message (the same rule as Vault's errors and error_text, issue 16 B10)."""

import json

from shim.net.http import Response
from shim.sources import azure, gcp
from shim.sources.base import register


def _resp(status, body):
    return Response(status, "", {}, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_google_and_azure_errors_are_one_line_and_redacted():
    register("ya29.bearer-token-SECRET-42")
    g = gcp._error(_resp(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                         "message": "token ya29.bearer-token-SECRET-42\nis not allowed"}}))
    a = azure._error(_resp(401, {"error": {"code": "Unauthorized",
                                           "message": "Bearer ya29.bearer-token-SECRET-42 rejected"}}))
    for err, head in ((g, "HTTP 403 PERMISSION_DENIED: token"), (a, "HTTP 401 Unauthorized: Bearer")):
        assert err.cause.startswith(head), err.cause
        assert "SECRET-42" not in err.cause and "\n" not in err.cause
        assert not err.missing


def test_a_404_is_missing_and_a_body_that_is_not_json_is_shown_as_text():
    err = gcp._error(_resp(404, {"error": {"status": "NOT_FOUND", "message": "Secret [s] not found"}}))
    assert err.missing and "NOT_FOUND" in err.cause
    err = azure._error(_resp(502, b"<html>bad gateway</html>"))
    assert err.cause == "HTTP 502 <html>bad gateway</html>" and not err.missing
