"""URLs, references and HTTP framing from hostile text: every failure is a one-line cause
in words (URLError / RefError / HttpError), never a Python exception or Python's wording."""

import os

from hypothesis import given, settings, strategies as st

from shim.net import url
from shim.net.http import HttpError, _framing, _Reply
from shim.sources import refs

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
PYTHON_WORDS = ("cast to integer", "Invalid IPv6", "ValueError", "Traceback", "_ssl.c", "int()")

URLISH = st.builds(lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
                   st.sampled_from(["http", "https", "HTTP", "ftp", "tcp", ""]),
                   st.sampled_from(["h", "127.0.0.1", "[::1]", "[::1", "::1", "u:p@h", "", "[x]",
                                    "h]", "[fe80::1%25eth0]"]),
                   st.one_of(st.just(""), st.text(alphabet=":0123456789x-+ ٣", max_size=8)),
                   st.text(max_size=12))


def _clean(text):
    assert "\n" not in text and not any(word in text for word in PYTHON_WORDS), text


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.one_of(URLISH, st.text(max_size=40)))
def test_url_parse_and_split_fail_only_in_words(text):
    for fn in (url.parse, url.split):
        try:
            fn(text)
        except url.URLError as err:
            _clean(str(err))
    assert "@" not in url.redacted(text).partition("://")[2].partition("/")[0]


@settings(max_examples=300 * SCALE, deadline=None)
@given(URLISH)
def test_http_references_fail_only_in_words(text):
    try:
        ref = refs.parse("ref+" + text)
    except refs.RefError as err:
        _clean(str(err))
    else:
        if ref.scheme in ("http", "https"):
            target = url.parse(ref.path)  # what parses as a reference can be requested
            assert 1 <= target.port <= 65535


def _reply(pairs):
    """A parsed reply head as the client holds it (names lower-cased, repeats kept)."""
    reply = _Reply("HTTP/1.1", 200, "OK")
    reply.fields = [(name.lower(), value) for name, value in pairs]
    return reply


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Content-Length", "Transfer-Encoding", "X"]),
                          st.text(max_size=12)), max_size=4))
def test_framing_headers_are_read_or_refused_in_words(pairs):
    try:
        length, chunked = _framing(_reply(pairs), "h:1", "GET")
    except HttpError as err:
        _clean(err.cause)
    else:
        assert chunked or length is None or (isinstance(length, int) and length >= 0)
