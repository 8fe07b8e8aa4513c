"""shim.net.url.parse reads path and query as urllib.parse.urlsplit does (without importing
it: start-up cost), for every URL it accepts."""

from urllib.parse import urlsplit

from hypothesis import example, given, strategies as st

from shim.net.url import URLError, parse

tail = st.text(alphabet=st.sampled_from("/?#&=ab%2Fé.;:@"), max_size=16)


@given(st.sampled_from(["http://h", "https://u:p@h:8200", "http://[::1]:1", "http://h:80"]), tail)
@example("http://h", "")
@example("http://h", "?")
@example("http://h", "#f?x")
@example("http://h", "/a?b#c?d")
@example("http://h", "?a?b")
def test_path_and_query_as_urlsplit_reads_them(base, rest):
    url = base + rest
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        parts = None
    try:
        target = parse(url)
    except URLError:
        return  # refused (a netloc that is no host:port): nothing to compare
    assert parts is not None, url  # what urlsplit refuses, parse refuses too
    assert target.path == (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
