"""Fuzz the embedded-reference scanner (shim.sources.embedded): any text -- NUL bytes,
non-UTF-8 bytes (as surrogate escapes, how templates read them), hostile characters --
gives ordered, non-overlapping spans or one EmbeddedError with a column inside the text;
and the work is linear in the length of the text (counted, never timed)."""

import os

import pytest
from hypothesis import given, settings, strategies as st

from shim.sources import embedded
from shim.sources.embedded import Composite, EmbeddedError, scan
from strategies import HOSTILE
from support import count_work

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))

PIECES = HOSTILE + ("ref+", "secretref+", "xref+", "vault://", "secret/db", "env://", "A",
                    "#/", "%2B", "+", "?optional=true", "?default=x", "&", "\x00", "://",
                    "s3://b/k", "https://h/p", "\udcff", "\udc80")
pieced = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)
undecodable = st.binary(max_size=64).map(lambda b: b.decode("utf-8", "surrogateescape"))


def check(text):
    try:
        spans = scan(text)
    except EmbeddedError as err:
        assert 1 <= err.column <= len(text), (text, err.column)
        assert "\n" not in str(err) and "\r" not in str(err)
        assert text[err.offset:].startswith(("ref+", "secretref+"))
        return None
    pos = 0
    for span in spans:
        assert pos <= span.start < span.end <= len(text)
        assert text[span.start:].startswith("secretref+" if span.secret else "ref+")
        pos = span.end
    out = Composite(text, spans).render(["V"] * len(spans))
    assert out.count("V") >= len(spans)
    return spans


@settings(max_examples=600 * SCALE, deadline=None)
@given(st.one_of(pieced, undecodable, st.text(max_size=60)))
def test_scan_any_text(text):
    check(text)


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_non_utf8_around_a_reference(before, after):
    text = (before + b" ref+env://A+ " + after).decode("utf-8", "surrogateescape")
    spans = check(text)
    if spans is not None:  # bytes before it cannot make "ref+" part of a word... unless \w
        rendered = Composite(text, spans).render(["V"] * len(spans))
        assert rendered.encode("utf-8", "surrogateescape").startswith(before)


def test_nul_ends_a_reference():
    (span,) = scan("a ref+env://A\x00B")
    assert span.ref.path == "A" and span.end == len("a ref+env://A")
    with pytest.raises(EmbeddedError) as info:
        scan("x ref+\x00env://A")
    assert info.value.column == 3


def _parse_work(text):
    """Characters handed to the reference parser: the regex part of the scan is not seen
    by count_work, so this counts what each reference body costs."""
    seen = [0]
    real = embedded.parse

    def counting(body):
        seen[0] += len(body)
        return real(body)

    embedded.parse = counting
    try:
        try:
            scan(text)
        except EmbeddedError:
            pass
    finally:
        embedded.parse = real
    return seen[0]


@pytest.mark.parametrize("unit", ["ref+env://A+", "xref+", "ref+env://A ", "a+b+c",
                                  "secretref+vault://secret/db#/k+", "ref+env://A",
                                  "ref+https://h/" + "a" * 10, "secret", "rref+"])
def test_scan_is_linear_in_a_repeated_unit(unit):
    small = count_work(scan, unit * 300) + _parse_work(unit * 300)
    large = count_work(scan, unit * 600) + _parse_work(unit * 600)
    assert large <= 2.3 * small + 300, (unit, small, large)


def test_one_long_reference_is_linear():
    small = _parse_work("x ref+https://h/" + "a" * 5000)
    large = _parse_work("x ref+https://h/" + "a" * 10000)
    assert large <= 2.1 * small
