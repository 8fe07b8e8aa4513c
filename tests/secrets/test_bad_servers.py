"""Servers that answer wrongly: garbage, wrong shapes, and the Vault namespace header.
Loopback stubs: no real server can be made to return garbage on purpose."""

import json

import pytest
import servers
from helpers import fetch

from shim.errors import ShimError


@pytest.fixture
def stub():
    answers = {}

    def handler(req):
        return answers.get(req.path.split("?")[0], (404, {}, b'{"errors": []}'))
    s = servers.Stub(handler)
    s.answers = answers
    yield s
    s.stop()


def vault_env(stub, **extra):
    return {"VAULT_ADDR": f"http://127.0.0.1:{stub.port}", "VAULT_TOKEN": "t", **extra}


def test_vault_garbage_and_wrong_shapes(stub):
    mounts = (200, {}, json.dumps({"data": {"type": "kv", "path": "kv/",
                                            "options": {"version": "1"}}}).encode())
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = mounts
    stub.answers["/v1/kv/a"] = (200, {}, b"\x00garbage<html>")
    with pytest.raises(ShimError, match="read kv/a: Vault returned a body that is not JSON"):
        fetch(["ref+vault://kv/a"], vault_env(stub))
    stub.answers["/v1/kv/a"] = (200, {}, b"[1, 2]")
    with pytest.raises(ShimError, match="Vault returned JSON that is not an object"):
        fetch(["ref+vault://kv/a"], vault_env(stub))
    stub.answers["/v1/kv/a"] = (200, {}, b'{"data": null}')
    with pytest.raises(ShimError, match="Vault returned no data"):
        fetch(["ref+vault://kv/a"], vault_env(stub))


def test_vault_errors_name_what_was_asked(stub):
    # Was "look up the mount of: HTTP 403" (the object left empty).
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = (403, {}, b'{"errors": ["permission denied"]}')
    with pytest.raises(ShimError) as info:
        fetch(["ref+vault://kv/a#/k"], vault_env(stub))
    assert "look up the mount of kv/a: HTTP 403: permission denied" in info.value.message()
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = (404, {}, b"")
    stub.answers["/v1/kv/a"] = (403, {}, b'{"errors": ["permission denied"]}')
    with pytest.raises(ShimError) as info:
        fetch(["ref+vault://kv/a#/k"], vault_env(stub))
    assert "read kv/a: HTTP 403: permission denied" in info.value.message()


def test_vault_namespace_header(stub):
    stub.answers["/v1/sys/internal/ui/mounts/kv/a"] = (404, {}, b"")  # an old server: KV v1
    stub.answers["/v1/kv/a"] = (200, {}, b'{"data": {"k": "v"}}')
    got = fetch(["ref+vault://kv/a#/k"], vault_env(stub, VAULT_NAMESPACE="team-a"))
    assert got["ref+vault://kv/a#/k"] == "v"
    assert {h.get("X-Vault-Namespace") for _, _, h in stub.requests} == {"team-a"}
    stub.requests.clear()
    fetch(["ref+vault://kv/a?namespace=team-b#/k"], vault_env(stub, VAULT_NAMESPACE="team-a"))
    assert {h.get("X-Vault-Namespace") for _, _, h in stub.requests} == {"team-b"}


def test_aws_garbage(stub):
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{stub.port}", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"}
    stub.answers["/"] = (200, {}, b"<<not json>>")
    with pytest.raises(ShimError, match="ssm returned a body that is not JSON"):
        fetch(["ref+awsssm://x"], env)
    stub.answers["/"] = (200, {}, b'{"Parameters": []}')
    with pytest.raises(ShimError, match="parameter /x not found"):
        fetch(["ref+awsssm://x"], env)
    stub.answers["/"] = (200, {}, b'{"Name": "x"}')
    with pytest.raises(ShimError, match="neither SecretString nor SecretBinary"):
        fetch(["ref+awssecrets://x"], env)
    stub.answers["/"] = (500, {}, b"<Error><Code>InternalError</Code><Message>boom</Message></Error>")
    with pytest.raises(ShimError, match="HTTP 500 InternalError: boom"):
        fetch(["ref+awssecrets://x"], env, deadline=5)


# -- HTTP framing ---------------------------------------------------------------------------
# A loopback stub that writes raw bytes: no real server can be made to send a body shorter
# than its Content-Length, a Content-Length of "abc" or a broken chunk on purpose.
class RawServer:
    """Answers every request with `reply` (bytes); then closes, or with keep_open waits for
    the client to close (a server that neither ends the body nor the connection)."""

    def __init__(self, reply, keep_open=False):
        import socket
        import threading

        self.reply, self.keep_open, self.requests = reply, keep_open, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/doc"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        conn.settimeout(60)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            conn.sendall(self.reply)
            if self.keep_open:
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def _head(*lines):
    return ("HTTP/1.1 200 OK\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode()


@pytest.mark.parametrize("reply, keep_open, cause", [
    # 13 bytes of 1000, then close: was accepted as the secret
    (_head("Content-Length: 1000") + b"hunter2-start", False,
     "cut short: the connection closed after 13 of 1000 bytes"),
    # not one decimal number: was read to the close, i.e. until the deadline
    (_head("Content-Length: abc") + b"hunter2", True, 'Content-Length "abc" is not one whole number'),
    (_head("Content-Length: -5") + b"hunter2", True, 'Content-Length "-5" is not one whole number'),
    (_head("Content-Length: +7") + b"hunter2", True, "is not one whole number"),
    (_head("Content-Length: 7", "Content-Length: 9") + b"hunter2", True,
     'Content-Length "7, 9" is not one whole number'),
    (_head("Content-Length: 7, 9") + b"hunter2", True, "is not one whole number"),
    (_head("Transfer-Encoding: gzip") + b"hunter2", True,
     'Transfer-Encoding "gzip" is not supported (only chunked)'),
    # chunked: sizes http.client's int(x, 16) would take, bodies cut short, overlong chunks
    (_head("Transfer-Encoding: chunked") + b"-5\r\nhunter2\r\n0\r\n\r\n", True,
     'chunk size "-5" is not a hexadecimal number'),
    (_head("Transfer-Encoding: chunked") + b"0x7\r\nhunter2\r\n0\r\n\r\n", True,
     'chunk size "0x7" is not a hexadecimal number'),
    (_head("Transfer-Encoding: chunked") + b"zz\r\nhunter2\r\n0\r\n\r\n", True,
     'chunk size "zz" is not a hexadecimal number'),
    (_head("Transfer-Encoding: chunked") + b"\r\n", True, 'chunk size "" is not'),
    (_head("Transfer-Encoding: chunked") + b"100\r\nhunter2", False,
     "cut short inside a chunk"),
    (_head("Transfer-Encoding: chunked") + b"7\r\nhunter2\r\n", False,
     "cut short (chunked encoding without its last chunk)"),
    (_head("Transfer-Encoding: chunked") + b"3\r\nhunter2\r\n0\r\n\r\n", True,
     "a chunk is longer than its size says"),
])
def test_malformed_http_framing_is_an_error(reply, keep_open, cause):
    server = RawServer(reply, keep_open)
    try:
        # A deadline far away: the error must come from the framing, not from waiting.
        with pytest.raises(ShimError) as info:
            fetch([f"ref+{server.url}"], {}, deadline=60)
    finally:
        server.close()
    message = info.value.message()
    assert cause in message, message
    assert "deadline" not in message and "hunter2" not in message
    assert info.value.code == 117


@pytest.mark.parametrize("reply", [
    _head("Content-Length: 7") + b"hunter2",
    _head("Content-Length: 7", "Content-Length: 7") + b"hunter2",  # identical: RFC 9112 6.3
    _head("Content-Length: 7, 7") + b"hunter2",
    _head("Transfer-Encoding: chunked") + b"3;ext=1\r\nhun\r\n4 \r\nter2\r\n0\r\nX-T: 1\r\n\r\n",
    _head("Transfer-Encoding: chunked", "Content-Length: 99") + b"7\r\nhunter2\r\n0\r\n\r\n",
    _head() + b"hunter2",  # no framing: the body ends at the close
])
def test_well_framed_bodies_are_read_exactly(reply):
    server = RawServer(reply, keep_open=b"Content-Length" in reply or b"chunked" in reply)
    try:
        got = fetch([f"ref+{server.url}"], {}, deadline=30)
    finally:
        server.close()
    assert got[f"ref+{server.url}"] == b"hunter2"


def test_a_reflected_token_past_the_cut_is_not_shown_in_part(stub, tmp_path):
    # The server's error text is cut at 300 characters; the token starts just before the cut.
    # Redacting after the cut would leave "bearer-tok" in clear: the text is redacted first.
    token = "bearer-token-SECRET-" + "4" * 40
    token_file = tmp_path / "token"
    token_file.write_text(token)

    def reflect(req):
        return 500, {}, ("x" * 270 + " auth was " + req.headers["Authorization"]).encode()
    stub.answers.clear()
    server = servers.Stub(reflect)
    try:
        with pytest.raises(ShimError) as info:
            fetch([f"ref+http://127.0.0.1:{server.port}/doc"],
                  {"SHIM_HTTP_TOKEN_FILE": str(token_file)}, deadline=5)
    finally:
        server.stop()
    message = info.value.message()
    assert "HTTP 500" in message and "bearer-tok" not in message and "SECRET" not in message


def test_a_silent_metadata_service_is_asked_once(tmp_path):
    # No credentials configured: the chain ends at the instance metadata service, asked once
    # with botocore's short timeout.  A loopback stub that accepts and never answers stands in
    # for a black-holed 169.254.169.254 (no real IMDS emulator does that on purpose).
    import socket
    import threading

    from support import run
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)  # held open, never answered
    threading.Thread(target=accept, daemon=True).start()
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    import os
    if not os.environ.get("SHIM_BIN"):
        from support import REPO
        env["PYTHONPATH"] = str(REPO)
    try:
        r = run(["--secret", "X=ref+awsssm://app/key", "--", "true"], env=env, timeout=60)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    err = r.stderr.decode()
    assert r.returncode == 117 and "no AWS credentials" in err
    assert "the instance metadata service had none" in err
    assert len(accepted) == 1  # one attempt (botocore's default), not a retry ladder


@pytest.mark.parametrize("location, cause", [
    ("http://127.0.0.1:99999/x", "the redirect's Location is not a usable URL: port 99999 is out of range"),
    ("http://[::1/x", "the redirect's Location is not a usable URL: the host's '['"),
    ("ftp://127.0.0.1/x", 'unsupported URL scheme "ftp"'),
])
def test_a_redirect_to_a_malformed_url_is_said_in_words(location, cause):
    # Was "ValueError: Port out of range 0-65535" from urlsplit(...).port.
    server = servers.Stub(lambda req: (302, {"Location": location}, b""))
    try:
        with pytest.raises(ShimError) as info:
            fetch([f"ref+http://127.0.0.1:{server.port}/doc"], {}, deadline=10)
    finally:
        server.stop()
    message = info.value.message()
    assert cause in message and "ValueError" not in message and "HTTP 302" in message
