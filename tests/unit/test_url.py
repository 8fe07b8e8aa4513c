"""shim.net.url: what a request may be sent to, read strictly, with causes fit for a message."""

import pytest

from shim.net import url
from shim.net.http import Client, HttpError


@pytest.mark.parametrize("text, host, port, path", [
    ("http://h/", "h", 80, "/"),
    ("https://h", "h", 443, "/"),
    ("http://h:8200/v1/x?y=1", "h", 8200, "/v1/x?y=1"),
    ("HTTP://h:/x", "h", 80, "/x"),  # an empty port is the default (RFC 3986)
    ("http://[::1]:8200/x", "::1", 8200, "/x"),
    ("https://[fe80::1%25eth0]/", "fe80::1%25eth0", 443, "/"),
    ("http://u:p@h:1/", "h", 1, "/"),
    ("http://h:65535#frag", "h", 65535, "/"),
])
def test_good_urls(text, host, port, path):
    t = url.parse(text)
    assert (t.host, t.port, t.path) == (host, port, path)


@pytest.mark.parametrize("text, cause", [
    ("http://127.0.0.1:0/x", "port 0 is out of range; use 1 to 65535"),
    ("http://h:99999/x", "port 99999 is out of range; use 1 to 65535"),
    ("http://h:x/", 'port "x" is not a number; use 1 to 65535'),
    ("http://h:-1/", 'port "-1" is not a number'),
    ("http://h:８０/", "is not a number"),  # non-ASCII digits
    ("https://[::1", "'[' has no closing ']'"),
    ("https://[::1]x/", "unexpected text after the host's ']'"),
    ("https://[nope]/", "is not an IPv6 address"),
    ("http://h]/", "outside an IPv6 host"),
    ("http:///x", "missing host"),
    ("http://u:p@/x", "missing host"),
    ("ftp://h/", 'unsupported URL scheme "ftp"'),
    ("h:80", "unsupported URL scheme (none)"),
    ("http://h /", "space or a control character"),
    ("", "empty URL"),
])
def test_bad_urls(text, cause):
    with pytest.raises(url.URLError) as info:
        url.parse(text)
    assert cause in str(info.value)
    assert "Python" not in str(info.value) and "cast" not in str(info.value)


def test_the_client_never_connects_for_a_malformed_url(monkeypatch):
    # Port 0 used to read as "no port" and connect to port 80.
    def refuse(*a, **kw):
        raise AssertionError(f"connected to {a[0]}")
    monkeypatch.setattr("socket.create_connection", refuse)
    for bad in ("http://127.0.0.1:0/x", "http://127.0.0.1:99999/x", "https://[::1/x"):
        with pytest.raises(HttpError, match="^cannot request .*(out of range|no closing)"):
            Client(env={}).request("GET", bad)


@pytest.mark.parametrize("parse_one", [
    lambda u: __import__("shim.streams.sinks", fromlist=["parse"]).parse(u),
    lambda u: __import__("shim.telemetry.relay", fromlist=["x"]).parse_addr(u, "--stdin-from"),
    lambda u: __import__("shim.telemetry.heartbeat", fromlist=["x"]).check_url(
        u, "--heartbeat", ("http", "https", "tcp")),
])
@pytest.mark.parametrize("text, cause", [
    ("tcp://h:x", 'port "x" is not a number'),  # was "Port could not be cast to integer value as 'x'"
    ("tcp://h:99999", "port 99999 is out of range"),
    ("tcp://[::1", "no closing ']'"),  # was "Invalid IPv6 URL"
])
def test_address_parsers_say_what_is_wrong_in_words(parse_one, text, cause):
    from shim.errors import ShimError
    with pytest.raises(ShimError) as info:
        parse_one(text)
    message = info.value.message()
    assert cause in message and "cast" not in message and "Invalid IPv6" not in message


def test_split_reads_http_urls_as_requests_read_them():
    # An http(s) URL in a sink, heartbeat, status or wait-for option is going to be requested:
    # port 0 (which reads as "no port" to urlsplit) is refused when the option is read.
    for bad in ("http://h:0/x", "https://[::1/x", "http://u@h:0/"):
        with pytest.raises(url.URLError):
            url.split(bad)
    assert url.split("https://h/x?token_file=/t")[0].path == "/x"


def test_split_keeps_what_callers_decide():
    assert url.split("tcp-listen://:9000")[1] == 9000
    assert url.split("tcp-listen://:0")[1] == 0  # the relay refuses 0 itself, in its words
    assert url.split("unix:///run/x.sock")[0].path == "/run/x.sock"
    assert url.split("tcp://h")[1] is None
