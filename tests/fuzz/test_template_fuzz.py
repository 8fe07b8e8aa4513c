"""Fuzz the template language (shim.run.templates): any text -- NUL, non-UTF-8 bytes as
surrogate escapes, hostile pieces of ${...} and references -- parses into nodes that render
without a crash, or gives one TemplateError whose offset is inside the text."""

import os

from hypothesis import given, settings, strategies as st

from shim.run.templates import TemplateError, needed, parse, position, render

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
PIECES = ("${", "}", "$", "$$", ":-", "A", "B_1", "1", "ref+", "env://A", "+", "\n", "\x00",
          "x", " ", "{", "secretref+", "vault://secret/a#/k", "\udcff", "é")
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
                  st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
                  st.text(max_size=60))


@settings(max_examples=800 * SCALE, deadline=None)
@given(texts, st.dictionaries(st.sampled_from(["A", "B_1"]), st.sampled_from(["", "v", "$"])))
def test_parse_and_render_any_text(text, env):
    try:
        nodes = parse(text)
    except TemplateError as err:
        assert 0 <= err.offset <= len(text)
        line, column = position(text, err.offset)
        assert line >= 1 and column >= 1 and "\n" not in err.cause
        return
    spans = needed(nodes, env)
    try:
        out = render(nodes, env, {id(s): "V" for s in spans})
    except TemplateError as err:  # an unset variable without fallback
        assert "is not set" in err.cause and 0 <= err.offset < len(text)
        return
    assert isinstance(out, str)
    if "$" not in text and "ref+" not in text:
        assert out == text  # nothing special: the text comes out as it went in
