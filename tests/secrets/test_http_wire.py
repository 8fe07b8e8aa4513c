"""shim's own HTTP/1.1 wire code (shim/net/http.py, no http.client): status lines, header
fields, informational replies, keep-alive and what a request may carry.  Loopback stubs
that write raw bytes: no real server answers malformed on purpose."""

import socket
import threading

import pytest

from shim.net.http import Client, HttpError, _headers, _request_bytes


class Scripted:
    """Answers the n-th request with replies[n] (bytes); `close_after` closes after each reply.
    Records every request head it read."""

    def __init__(self, replies, close_after=True):
        self.replies, self.close_after, self.heads, self.connections = list(replies), close_after, [], 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            buf = b""
            while self.replies:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.heads.append(head)
                conn.sendall(self.replies.pop(0))
                if self.close_after:
                    return

    def url(self, path="/x"):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.sock.close()


@pytest.fixture
def scripted():
    made = []

    def make(replies, close_after=True):
        made.append(Scripted(replies, close_after))
        return made[-1]
    yield make
    for s in made:
        s.close()


def client():
    from shim.net.http import NO_RETRY
    return Client(timeout=5, retry=NO_RETRY, env={})


def test_status_reason_headers_and_body(scripted):
    s = scripted([b"HTTP/1.1 201 Created Now\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nok"])
    resp = client().request("GET", s.url())
    assert (resp.status, resp.reason, resp.body) == (201, "Created Now", b"ok")
    assert resp.headers["x-a"] == "1, 2"  # repeated fields joined (RFC 9110, 5.3)


def test_informational_replies_are_skipped(scripted):
    s = scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"])
    assert client().request("POST", s.url(), body=b"b").body == b"z"


def test_obsolete_line_folding_is_one_value(scripted):
    s = scripted([b"HTTP/1.1 200 OK\r\nX-F: a\r\n  b\r\nContent-Length: 0\r\n\r\n"])
    assert client().request("GET", s.url()).headers["x-f"] == "a b"


@pytest.mark.parametrize("reply, cause", [
    (b"HTTP/2 200 OK\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 abc OK\r\n\r\n", "bad status line"),
    (b"SSH-2.0-OpenSSH\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
    (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header line"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
     "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", "a header line over 65536 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "cut short in its headers"),
])
def test_malformed_heads_are_errors_in_words(scripted, reply, cause):
    s = scripted([reply])
    with pytest.raises(HttpError) as info:
        client().request("GET", s.url())
    assert cause in info.value.cause
    assert "Error" not in info.value.cause  # no Python exception names


def test_keep_alive_reuses_one_connection(scripted):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    s = scripted([ok, ok, ok], close_after=False)
    c = client()
    for _ in range(3):
        assert c.request("GET", s.url()).body == b"ok"
    assert s.connections == 1


def test_connection_close_and_http10_are_not_pooled(scripted):
    s = scripted([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
                  b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"], close_after=False)
    c = client()
    assert [c.request("GET", s.url()).body for _ in range(3)] == [b"a", b"b", b"c"]
    assert s.connections == 3


def test_a_pooled_connection_the_server_closed_is_replaced_once(scripted):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    s = scripted([ok, ok], close_after=True)  # closes after each reply, without saying so
    c = client()
    assert c.request("GET", s.url()).body == b"ok"
    assert c.request("GET", s.url()).body == b"ok"  # the stale one failed, a fresh one worked
    assert s.connections == 2


def test_the_request_head_is_what_was_asked(scripted):
    s = scripted([b"HTTP/1.1 204 No Content\r\n\r\n"])
    client().request("POST", s.url("/v1/a?b=c"), headers={"host": "signed.example", "X-T": "1"}, body=b"{}")
    head = s.heads[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1/a?b=c HTTP/1.1"
    # The caller's host replaces the default Host (one Host field: a SigV4 signature covers it).
    assert [line for line in lines if line.lower().startswith("host:")] == ["host: signed.example"]
    assert "Content-Length: 2" in lines and "X-T: 1" in lines


@pytest.mark.parametrize("name, value", [("X-A", "v\r\nInjected: 1"), ("X-A", "v\nx"), ("X\r\nY", "v"),
                                         ("X-A", "v\0")])
def test_line_breaks_in_a_header_are_refused_before_sending(name, value):
    with pytest.raises(HttpError, match="line break or NUL"):
        _headers({"Host": "h"}, {name: value})


def test_a_body_gets_its_length_and_post_without_one_gets_zero():
    assert b"Content-Length: 3\r\n" in _request_bytes("PUT", "/", [("Host", "h")], b"abc")
    assert b"Content-Length: 0\r\n" in _request_bytes("POST", "/", [("Host", "h")], None)
    assert b"Content-Length" not in _request_bytes("GET", "/", [("Host", "h")], None)
    with pytest.raises(HttpError, match="outside ISO-8859-1"):
        _request_bytes("GET", "/\u20ac", [("Host", "h")], None)
