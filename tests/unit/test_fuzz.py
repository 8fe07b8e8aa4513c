"""Fuzzing: no input makes the parsers fail with anything but a one-line ShimError."""

from hypothesis import given, settings, strategies as st

from shim.config import kinds, options
from shim.run import envlayer
from shim.errors import ShimError

flags = st.sampled_from(sorted(options.BY_FLAG) + ["--", "-e", "--x", "-", "cmd", "--grace=1"])
words = st.one_of(flags, st.text(max_size=12))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-300, 300), st.floats(allow_nan=True),
                         st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(sorted({k.split(".")[-1] for k in options.BY_KEY} |
                                           {k.split(".")[0] for k in options.BY_KEY} |
                                           {"profiles", "command", "x"})), inner, max_size=4)),
    max_leaves=12)


def _ok_or_shim_error(fn, *args):
    try:
        fn(*args)
    except ShimError as err:
        assert "\n" not in err.message()
        assert 0 < err.code < 256


@settings(max_examples=400, deadline=None)
@given(st.lists(words, max_size=8), st.dictionaries(
    st.sampled_from([o.env for o in options.OPTIONS]), st.text(max_size=10), max_size=4))
def test_argv_and_environ(argv, environ):
    _ok_or_shim_error(_resolve, argv, environ)


def _resolve(argv, environ):
    try:
        options.resolve(argv, environ)
    except options.HelpRequested:  # -h/--help before '--' prints help: also fine
        pass


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_config_documents(doc):
    _ok_or_shim_error(options.parse_config, doc)
    errors = []
    try:
        options.parse_config(doc, None, errors)
    except ShimError:
        pass
    for path, err in errors:
        assert path.startswith("$") and isinstance(err, ShimError)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_dotenv_and_expansion(text):
    _ok_or_shim_error(envlayer.parse_dotenv, text, "fuzz.env")
    _ok_or_shim_error(envlayer.expand, text, {"A": "1"})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_durations_never_crash(text):
    try:
        kinds.parse_duration(text)
    except ValueError:
        pass
