"""Strategies shared by the fuzz tests: the inputs that broke shim before."""

from hypothesis import strategies as st

from shim.config import options

# Characters that broke or nearly broke a parser: non-ASCII digits (isdigit() accepts
# them, int() may not), NUL, quotes, escapes, expansion syntax, separators, a BOM,
# line separators other than \n, and non-ASCII letters.
HOSTILE = ("²", "١", "𝟡", "Ⅻ", "\x00", "\n", "\r", "\t", " ", '"', "'", "\\", "$", "${",
           "}", "{", ":", ":-", ",", "=", "-", "+", "_", ".", "#", "é", "\ufeff", "\u2028",
           "[", "]", "0", "1", "9", "a", "Z", "SIG", "TERM", "RTMIN+", "ms", "s", "export ")

hostile_text = st.lists(st.sampled_from(HOSTILE), max_size=16).map("".join) | \
    st.text(max_size=16)
hostile_word = hostile_text.filter(lambda s: "\x00" not in s)  # argv and environ cannot hold NUL

flag_words = st.sampled_from(sorted(options.BY_FLAG) + ["--", "-", "--x", "-h", "--help"])
argv_words = st.one_of(flag_words, hostile_word,
                       st.builds(lambda f, v: f"{f}={v}", flag_words, hostile_word))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-300, 300),
                         st.floats(allow_nan=True), hostile_text)
config_keys = st.sampled_from(sorted({k.split(".")[-1] for k in options.BY_KEY} |
                                     {k.split(".")[0] for k in options.BY_KEY} |
                                     {"profiles", "command", "secrets", "x", "²"}))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(config_keys | hostile_text, inner, max_size=4)),
    max_leaves=12)
# Per option, a value in its own shape: gets past the first check more often.
shaped_env = st.dictionaries(st.sampled_from([o.env for o in options.OPTIONS]), hostile_word,
                             max_size=6)
