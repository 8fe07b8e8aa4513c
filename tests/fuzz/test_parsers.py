"""Every parser, in-process: no input makes one fail with anything but a one-line
ShimError with a documented code, and none does more than linear work."""

import json
import os
import shlex

import pytest
from hypothesis import assume, example, given, settings, strategies as st

from shim.commands import check, install
from shim.config import argv as subargv, kinds, options
from shim.errors import REASON_CODES, ShimError
from shim.run import delegate, envlayer, results
from strategies import HOSTILE, argv_words, hostile_text, hostile_word, json_values, shaped_env

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
# Codes a ShimError may carry: shim's own (README, "Exit codes") and 128+n (interrupted).
SHIM_CODES = set(REASON_CODES.values())


def examples(n):
    return settings(max_examples=n * SCALE)


def _ok_or_shim_error(fn, *args):
    """Run fn; a ShimError is fine if it is one line with a documented code."""
    try:
        return fn(*args)
    except ShimError as err:
        _one_line(err)
        return None


def _one_line(err):
    message = err.message()
    assert "\n" not in message and "\r" not in message, message
    assert err.code in SHIM_CODES or 128 < err.code < 128 + 65, err.code
    for repr_word in ("Traceback", "<object", "<class"):
        assert repr_word not in message


def _resolve(argv, environ):
    try:
        conf = options.resolve(argv, environ)
    except options.HelpRequested:  # -h/--help before '--' prints help: also fine
        return None
    # What the run does with it next: its command and its environment.
    delegate.command_from(conf)
    envlayer.build({"HOME": "/h"}, conf, read=lambda path: "A=1\n")
    return conf


@examples(500)
@given(st.lists(argv_words, max_size=10), shaped_env)
def test_argv_and_every_variable(argv, environ):
    _ok_or_shim_error(_resolve, argv, environ)


@examples(500)
@given(json_values, st.one_of(st.none(), hostile_word))
def test_config_documents(doc, profile):
    _ok_or_shim_error(options.parse_config, doc, profile)
    # Collect-all mode (shim check) never raises: every problem lands in `errors`.
    errors = []
    options.parse_config(doc, profile, errors)
    for path, err in errors:
        assert path.startswith("$") and isinstance(err, ShimError)
        _one_line(err)


@examples(300)
@given(shaped_env, json_values)
def test_check_reports_without_raising(environ, doc):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "c.json")
        with open(cfg, "w") as f:
            json.dump(doc, f)
        environ = dict(environ, SHIM_CONFIG=cfg)
        stderr = []
        code = _capture_check(environ, stderr)
        assert code in (0, 125)
        for line in "".join(stderr).splitlines():
            assert line.startswith("shim: check "), line


def _capture_check(environ, stderr):
    import shim.commands.check as mod

    real_err, real_out = mod.write_stderr, mod.write_stdout
    mod.write_stderr, mod.write_stdout = stderr.append, lambda text: None
    try:
        return check.main([], environ)
    finally:
        mod.write_stderr, mod.write_stdout = real_err, real_out


@examples(400)
@given(hostile_text)
def test_dotenv_and_expansion(text):
    _ok_or_shim_error(envlayer.parse_dotenv, text, "fuzz.env", {"A": "1"})
    _ok_or_shim_error(envlayer.expand, text, {"A": "1", "E": ""}, "fuzz")


@example('A="\\')  # an unterminated quoted value ending in a backslash
@example("A='")
@example('A="x\nB=y')  # a quote left open runs into the next line
@example("A=${A")
@examples(400)
@given(st.lists(st.sampled_from(["A", "=", "'", '"', "\\", "\n", " ", "#", "${A}", "x"]),
                max_size=20).map("".join))
def test_dotenv_never_reads_past_its_input(text):
    # Whatever it returns, each value is made of the input's own characters (no reads
    # past the end, no resurrected text from an earlier line).
    pairs = _ok_or_shim_error(envlayer.parse_dotenv, text, "f", {"A": "1"}) or []
    for _, value in pairs:
        assert set(value) <= set(text) | set("1\n\t\r$")


# The grammar's hard cases, pinned so every run in every hypothesis profile checks them; a
# falsifying example that `scripts/test explore` finds is added here too (issue 21).
@example('a\\')  # a backslash at the end escapes nothing
@example('"a\\"')  # an escaped quote leaves the word open
@example('"\\\\"')
@example('x"\\\\\\""y')
@example('"\\$x"')  # in double quotes a backslash escapes only \\ and "
@example('a\\\nb')  # outside quotes it escapes a newline too
@example("'a b'\"c\"\\ d")
@example('\\\'"\'"')
@example(' \t\r\n ')
@examples(400)
@given(hostile_text)
def test_shell_words_match_shlex(text):
    """The linear splitter gives shlex.split's words, or an error where shlex has one."""
    assume("\x00" not in text)
    try:
        expected = shlex.split(text, comments=False, posix=True)
    except ValueError:
        expected = None
    try:
        got = delegate.split_words(text)
    except ShimError as err:
        _one_line(err)
        got = None
    assert got == expected


@examples(300)
@given(hostile_text)
def test_number_parsers(text):
    for fn in (kinds.parse_duration,):
        try:
            value = fn(text)
            assert value >= 0
        except ValueError:
            pass
    for fn in (kinds.parse_signal, kinds.parse_exit_code):
        value = _ok_or_shim_error(fn, text, "fuzz")
        if value is not None:
            assert isinstance(value, int) and not isinstance(value, bool)
            if fn is kinds.parse_exit_code:
                assert 0 <= value <= 255 and text.strip().isascii()


@examples(300)
@given(json_values, st.sampled_from(["x86_64", "aarch64", "riscv64", "²"]))
def test_image_entrypoints(spec, machine):
    argv = _ok_or_shim_error(delegate.from_image, spec, machine)
    if argv is not None:
        assert argv and all(isinstance(w, str) and "\x00" not in w for w in argv)


@examples(300)
@given(st.lists(st.one_of(st.sampled_from(["--versioned", "--arch", "--from", "--list", "--",
                                           "--arch=all", "--no-versioned", "-h", "--x"]),
                          hostile_word), max_size=6),
       st.dictionaries(st.sampled_from(list(install.ENV_NAMES.values())), hostile_word, max_size=3))
def test_install_argv_and_variables(argv, environ):
    try:
        _ok_or_shim_error(install.parse, argv, environ)
    except subargv.HelpRequested:
        pass


@examples(300)
@given(st.lists(st.one_of(st.sampled_from(["--config", "--profile", "--schema", "--no-schema",
                                           "--schema=maybe", "--", "-h"]), hostile_word),
                max_size=6))
def test_check_and_version_argv(argv):
    for table, name in ((check.OPTIONS, "check"), (__import__("shim.commands.version",
                                                   fromlist=["OPTIONS"]).OPTIONS, "version")):
        try:
            _ok_or_shim_error(subargv.parse_flags, argv, table, name, "usage")
        except subargv.HelpRequested:
            pass


@examples(200)
@given(st.integers(0, 9000), st.integers(0, 9000), st.integers(0, 80), st.integers(0, 200))
def test_termination_message_always_fits(spill_len, error_len, n_results, result_len):
    record = {"version": 1, "exit_code": 1, "reason": "exited", "error": "e" * error_len or None,
              "results": {f"r{i}": "x" * result_len for i in range(n_results)},
              "phases_ms": {"config": 1.0}, "signal": None}
    message, _ = results.termination_message(record, "/" + "p" * spill_len)
    assert len(message) <= results.TERMINATION_LIMIT
    assert isinstance(json.loads(message).get("results_truncated", 0), int)


# -- linearity: work counted (line events + characters scanned), never timed -----------------------
def _environ_list(text):
    options.parse_environ({"SHIM_ENV": text, "SHIM_UNSET_ENV": text})


# name -> (parser taking the text first, prefix of the text, extra arguments)
PARSERS = {
    "dotenv": (envlayer.parse_dotenv, "", ("f", {"A": "1"})),
    "dotenv quoted": (envlayer.parse_dotenv, 'A="', ("f", {})),
    "dotenv single-quoted": (envlayer.parse_dotenv, "A='", ("f", {})),
    "expand": (envlayer.expand, "", ({"A": "1"},)),
    "expand in a fallback": (envlayer.expand, "${A:-", ({},)),
    "shell words": (delegate.split_words, "", ()),
    "shell words quoted": (delegate.split_words, '"', ()),
    "duration": (kinds.parse_duration, "", ()),
    "environ lists": (_environ_list, "", ()),
}


@pytest.mark.parametrize("parser", sorted(PARSERS))
@examples(25)
@given(unit=st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=5).map("".join))
def test_every_parser_is_linear_in_a_repeated_unit(parser, unit):
    """An input made of one unit repeated n and 2n times: twice the work at most.

    This is how quadratic inputs look (a long quoted value, many lines, a long
    unterminated ${, many quoted words); the old dotenv scanner gave a ratio of 4
    here, and so did a backslash search to the end of the text per quoted word.
    """
    from support import count_work

    fn, prefix, extra = PARSERS[parser]
    small = count_work(fn, prefix + unit * 300, *extra)
    large = count_work(fn, prefix + unit * 600, *extra)
    assert large <= 2.3 * small + 300, (parser, unit, small, large)
