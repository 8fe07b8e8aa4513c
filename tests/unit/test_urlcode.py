"""shim.util.urlcode against urllib.parse, the reference it replaces on the start-up path."""

import re
import urllib.parse

from hypothesis import example, given, strategies as st

from shim.util.urlcode import is_name, parse_qsl, unquote

# Percent signs, hex digits, separators, non-ASCII and a lone surrogate (os.environ's
# surrogateescape form of a non-UTF-8 byte) are the interesting characters.
text = st.text(alphabet=st.sampled_from("%abcAF019+&=_ é/x\u00ff\udcff;"), max_size=24)


@given(text)
@example("%")
@example("%4")
@example("%41%")
@example("%C3%A9")
@example("%C3é%A9")  # a UTF-8 sequence split by a non-ASCII character: decoded per run
@example("%ff")
@example("a\udcff%41")
def test_unquote_is_urllibs(s):
    assert unquote(s) == urllib.parse.unquote(s)


@given(text)
@example("")
@example("&&")
@example("a")
@example("a=")
@example("=b")
@example("a=b=c&d+e=f%20g")
def test_parse_qsl_is_urllibs_with_blank_values(s):
    assert parse_qsl(s) == urllib.parse.parse_qsl(s, keep_blank_values=True)


@given(st.text(alphabet=st.sampled_from("aZ_09-é\u0661"), max_size=6))
@example("")
@example("_")
@example("9a")
@example("a\u0661")  # a non-ASCII digit is no part of a portable name
def test_is_name_is_the_portable_name_grammar(s):
    assert is_name(s) == bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s))
