"""Retry, backoff and proxy policy of shim.net.http with fakes: nothing sleeps, no socket."""

import pytest

from shim.net import http, proxy
from shim.net.http import Client, HttpError, Response, Retry


class Scripted(Client):
    """A Client whose attempts return (or raise) the scripted outcomes, recording sleeps."""

    def __init__(self, outcomes, **kw):
        self.now = 0.0
        self.sleeps = []
        super().__init__(clock=lambda: self.now, sleep=self._sleep, random=lambda: 1.0, **kw)
        self.outcomes = list(outcomes)
        self.attempts = 0

    def _sleep(self, s):
        self.sleeps.append(s)
        self.now += s

    def _once(self, *a):
        self.attempts += 1
        out = self.outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return Response(out, "", {}, b"server says no")


def test_5xx_then_ok_retries_with_exponential_full_jitter():
    c = Scripted([503, 500, 200], retry=Retry(attempts=4, base=0.5, cap=10))
    assert c.request("GET", "http://127.0.0.1/").status == 200
    assert c.attempts == 3
    assert c.sleeps == [0.5, 1.0]  # random()=1.0: the top of each jitter window


def test_jitter_is_uniform_below_the_window():
    c = Scripted([503, 200], retry=Retry(attempts=2, base=2, cap=10))
    c.random = lambda: 0.25
    c.request("GET", "http://127.0.0.1/")
    assert c.sleeps == [0.5]


def test_4xx_is_never_retried():
    for status in (400, 401, 403, 404):
        c = Scripted([status, 200])
        assert c.request("GET", "http://127.0.0.1/").status == status
        assert c.attempts == 1 and c.sleeps == []


def test_429_is_retried_and_honours_retry_after():
    c = Scripted([429, 200], retry=Retry(attempts=3, base=0.1, cap=5))
    c.outcomes[0] = 429
    orig = c._once

    def once(*a):
        resp = orig(*a)
        if resp.status == 429:
            resp.headers["retry-after"] = "3"
        return resp
    c._once = once
    assert c.request("GET", "http://127.0.0.1/").status == 200
    assert c.sleeps == [3.0]


def test_connection_errors_retry_then_raise_the_last():
    errs = [HttpError("connection refused", retryable=True) for _ in range(3)]
    c = Scripted(errs, retry=Retry(attempts=3, base=1, cap=1))
    with pytest.raises(HttpError, match="refused"):
        c.request("GET", "http://127.0.0.1/")
    assert c.attempts == 3 and len(c.sleeps) == 2


def test_permanent_errors_are_not_retried():
    c = Scripted([HttpError("TLS certificate not trusted")])
    with pytest.raises(HttpError, match="TLS"):
        c.request("GET", "https://127.0.0.1/")
    assert c.attempts == 1


def test_exhausted_5xx_returns_the_last_response_for_the_message():
    c = Scripted([502, 502], retry=Retry(attempts=2, base=0.1))
    resp = c.request("GET", "http://127.0.0.1/")
    assert resp.status == 502 and resp.error_text() == "server says no"


def test_no_sleep_past_the_deadline():
    c = Scripted([503, 503, 200], retry=Retry(attempts=3, base=10, cap=10))
    assert c.request("GET", "http://127.0.0.1/", deadline=5.0).status == 503
    assert c.sleeps == []


def test_cancelled_stops_before_the_next_attempt():
    c = Scripted([503, 200], retry=Retry(attempts=3, base=0.1))
    flag = []
    c.cancelled = lambda: bool(flag)
    c.sleep = lambda s: flag.append(1)
    with pytest.raises(HttpError, match="cancelled"):
        c.request("GET", "http://127.0.0.1/")


def test_error_text_is_one_short_line():
    resp = Response(500, "", {}, b"line one\nline two " + b"x" * 1000)
    text = resp.error_text(limit=50)
    assert "\n" not in text and len(text) <= 53


@pytest.mark.parametrize("host,port,no_proxy,expect", [
    ("api.internal", 443, "internal", True),
    ("api.internal", 443, ".internal", True),
    ("api.internal", 443, "*.internal", True),
    ("notinternal", 443, "internal", False),
    ("x.example", 443, "*", True),
    ("10.1.2.3", 80, "10.0.0.0/8", True),
    ("10.1.2.3", 80, "192.168.0.0/16", False),
    ("127.0.0.1", 8200, "127.0.0.1:8200", True),
    ("127.0.0.1", 8201, "127.0.0.1:8200", False),
    ("::1", 80, "::1", True),
    ("host", 80, "", False),
])
def test_no_proxy(host, port, no_proxy, expect):
    assert proxy.bypass(host, port, no_proxy) is expect


def test_proxy_for_scheme_case_and_auth():
    env = {"HTTPS_PROXY": "http://u:p%40ss@proxy:3128", "http_proxy": "proxy2:8080",
           "HTTP_PROXY": "ignored:1", "NO_PROXY": "direct.example"}
    p = proxy.proxy_for("https", "vault.example", 443, env)
    assert (p.host, p.port) == ("proxy", 3128)
    assert p.auth == "Basic dTpwQHNz" and "p@ss" not in repr(p)
    p = proxy.proxy_for("http", "vault.example", 80, env)
    assert (p.host, p.port) == ("proxy2", 8080)
    assert proxy.proxy_for("https", "direct.example", 443, env) is None
    assert proxy.proxy_for("https", "x", 443, {}) is None


def test_bad_proxy_is_a_clear_error():
    c = Client(env={"HTTP_PROXY": "ftp://proxy:21"})
    with pytest.raises(HttpError, match="bad proxy setting"):
        c.request("GET", "http://127.0.0.1:9/")


def test_unsupported_url():
    with pytest.raises(HttpError, match=r'^cannot request ftp://h/p: unsupported URL scheme "ftp"'):
        Client().request("GET", "ftp://user:pw@h/p?token=x")


def test_size_formatting():
    assert http._size(64 << 20) == "64 MiB" and http._size(10) == "10 bytes"
