"""Issue 8, policy side: each defect a hostile user found, as a class, in-process.

The CLI side (closed stdout, `2>&-`, the real environment block, install as a
user) is in tests/process/test_hardening_cli.py.  Every test here failed on the
tree before its fix.
"""

import pytest

from shim.commands import check, install
from shim.config import kinds, options
from shim.config.schema import schema
from shim.errors import EXIT_SETUP, EXIT_USAGE, ShimError
from shim.run import delegate, envlayer, results


def resolve(argv, environ=None):
    return options.resolve(argv, environ or {})


def usage_message(fn, *args):
    with pytest.raises(ShimError) as info:
        fn(*args)
    assert info.value.code == EXIT_USAGE, info.value.message()
    message = info.value.message()
    assert "\n" not in message
    return message


# -- 1: non-ASCII digits are not digits ---------------------------------------------
NON_ASCII_DIGITS = ["²", "١", "٣", "𝟡", "Ⅻ", "¹5", "1²"]


@pytest.mark.parametrize("digit", NON_ASCII_DIGITS)
def test_non_ascii_digits_are_usage_errors_in_every_number_parser(digit, tmp_path):
    usage_message(resolve, ["--rewrite", f"{digit}:TERM", "--", "true"])
    usage_message(resolve, ["--rewrite", f"TERM:{digit}", "--", "true"])
    usage_message(resolve, ["--rewrite", f"RTMIN+{digit}:TERM", "--", "true"])
    usage_message(resolve, ["--exit-remap", f"{digit}:0", "--", "true"])
    usage_message(resolve, ["--exit-remap", f"0:{digit}", "--", "true"])
    usage_message(resolve, ["--grace", f"{digit}s", "--", "true"])
    usage_message(resolve, ["--", "true"], {"SHIM_REWRITE": f"{digit}:TERM"})
    usage_message(options.parse_config, {"supervise": {"rewrite": {digit: "TERM"}}})
    usage_message(options.parse_config, {"supervise": {"exit_remap": {digit: 0}}})


# -- 2: NUL bytes, from every string source ------------------------------------------
def test_nul_in_an_env_file_value_is_a_one_line_error():
    message = usage_message(envlayer.parse_dotenv, "OK=1\nA=a\0b\n", "x.env")
    assert "x.env line 2" in message and "NUL" in message


@pytest.mark.parametrize("text", ["\0", "A\0=1", "# \0 comment", "A='x\0'", 'A="\0"'])
def test_nul_anywhere_in_an_env_file_is_refused(text):
    usage_message(envlayer.parse_dotenv, text, "x.env")


@pytest.mark.parametrize("argv, environ", [
    (["--image-entrypoint", '["a\\u0000b"]'], {}),
    (["--image-entrypoint", '{"Entrypoint": ["a"], "Cmd": ["x\\u0000"]}'], {}),
    (["--image-entrypoint", '{"Entrypoint": "sh -c \\"a\\u0000\\""}'], {}),
    ([], {"SHIM_IMAGE_ENTRYPOINT": '["a\\u0000"]'}),
])
def test_nul_in_the_image_entrypoint_is_a_usage_error(argv, environ):
    conf = resolve(argv, environ)
    usage_message(delegate.command_from, conf)


@pytest.mark.parametrize("doc", [
    {"command": ["a\0"]}, {"entrypoint": "a\0"}, {"env": {"set": {"A": "\0"}}},
    {"env": {"set": {"A\0": "x"}}}, {"env": {"files": ["/x\0"]}}, {"hooks": {"pre": "/d\0"}},
    {"profiles": {"p": {"command": ["\0"]}}},
])
def test_nul_in_any_config_string_is_a_usage_error(doc):
    usage_message(options.parse_config, doc)


# -- 5: every parser is linear (counted, not timed) ---------------------------------------
def _split_words(text):
    delegate.split_words(text)


LINEAR_CASES = {
    # a long double-quoted dotenv value over many lines (the CA bundle case)
    "dotenv multi-line quoted": (envlayer.parse_dotenv, lambda n: 'A="' + "line\n" * n + '"', "f"),
    "dotenv unterminated quote": (envlayer.parse_dotenv, lambda n: 'A="' + "x\\\n" * n, "f"),
    "dotenv many lines": (envlayer.parse_dotenv, lambda n: "A=1\n" * n, "f"),
    "dotenv many quoted lines": (envlayer.parse_dotenv, lambda n: 'A="x"\nB=\'y\'\n' * n, "f"),
    "expansion refs": (envlayer.expand, lambda n: "${A}" * n, {"A": "1"}),
    "expansion unterminated": (envlayer.expand, lambda n: "${A:-" + "x$" * n, {}),
    "expansion nested": (envlayer.expand, lambda n: "${B:-${A}}" * n, {"A": "1"}),
    "shell words": (_split_words, lambda n: "a 'b' \"c\\\"d\" " * n),
    "shell words, many quoted": (_split_words, lambda n: '"c" ' * n),
    "shell words unterminated": (_split_words, lambda n: '"' + "a\\\\" * n),
    "duration": (kinds.parse_duration, lambda n: "1s" * n),
}


@pytest.mark.parametrize("case", sorted(LINEAR_CASES))
def test_parsers_are_linear(case):
    from support import count_work

    fn, make, *rest = LINEAR_CASES[case]
    small, large = (count_work(fn, make(n), *rest) for n in (2000, 4000))
    # Linear: doubling the input at most doubles the work (plus a constant).  Work is
    # Python line events plus characters scanned by str searches, so a `find` to the
    # end of the text per line counts as the quadratic work it is.
    assert large <= 2.2 * small + 200, (case, small, large)


def test_environ_lists_are_linear():
    from support import count_work

    def parse(text):
        options.parse_environ({"SHIM_UNSET_ENV": text})

    small, large = (count_work(parse, "A," * n) for n in (2000, 4000))
    assert large <= 2.2 * small + 200


# -- 14: an empty variable means unset ----------------------------------------------------
@pytest.mark.parametrize("opt", [o for o in options.OPTIONS if o.name != "entrypoint"],
                         ids=lambda o: o.env)
def test_every_empty_variable_means_unset(opt):
    conf = resolve(["--", "true"], {opt.env: ""})
    # (the runtime, when not given, is the detected one: its "default")
    assert conf.sources[opt.name] == ("detected" if opt.name == "runtime" else "default")


def test_empty_image_entrypoint_variable_is_unset():
    assert delegate.command_from(resolve(["--", "true"], {"SHIM_IMAGE_ENTRYPOINT": ""})) == ["true"]


# -- 15: the termination message always fits ----------------------------------------------
def _record(results_map=None, error=None):
    return {"version": 1, "exit_code": 1, "reason": "exited", "error": error,
            "results": results_map or {}}


@pytest.mark.parametrize("spill_len", [10, 3000, 4000, 5000, 4096 * 3])
@pytest.mark.parametrize("error_len", [0, 600, 5000])
def test_termination_message_never_exceeds_4096_bytes(spill_len, error_len):
    record = _record({f"r{i}": "x" * 100 for i in range(60)}, "e" * error_len or None)
    spill = "/" + "p" * (spill_len - 1)
    message, full = results.termination_message(record, spill)
    assert len(message) <= results.TERMINATION_LIMIT
    assert full is not None
    import json

    short = json.loads(message)
    assert isinstance(short["results_truncated"], int) and short["results_truncated"] == 60
    assert short["results_file"] in (spill, None)
    if spill_len < 3500:
        assert short["results_file"] == spill  # dropped only when it cannot fit


def test_termination_message_second_level_shrink_cuts_the_error():
    # The first level (no results) is still too long because of the error: cut to 512.
    record = _record({"big": "x" * 5000}, "E" * 6000)
    import json

    short = json.loads(results.termination_message(record, "/t.full.json")[0])
    assert short["error"] == "E" * results.ERROR_CUT
    assert short["results_file"] == "/t.full.json"


def test_results_truncated_is_always_a_number():
    import json

    small_names = json.loads(results.termination_message(_record({"a": "x" * 5000}), "/s")[0])
    many_names = json.loads(results.termination_message(
        _record({f"n{i:04d}" * 20: "x" for i in range(400)}), "/s")[0])
    assert small_names["results_truncated"] == 1 and many_names["results_truncated"] == 400


# -- 17: the inherited environment is the process's own block ----------------------------
def test_inherited_environ_reads_the_environment_block(tmp_path):
    from shim.cli import inherited_environ

    block = tmp_path / "environ"
    block.write_bytes(b"A=1\0B=x=y\0A=second\0NOEQUALS\0=empty-name\0C=\xff\0")
    env = inherited_environ(str(block))
    assert env == {"A": "1", "B": "x=y", "C": "\udcff"}


def test_inherited_environ_falls_back_without_proc(tmp_path, monkeypatch):
    from shim.cli import inherited_environ

    monkeypatch.setenv("SHIM_FALLBACK_PROBE", "1")
    assert inherited_environ(str(tmp_path / "absent"))["SHIM_FALLBACK_PROBE"] == "1"


# -- 19: prepend/append on an unset PATH start from the default search path ----------------
@pytest.mark.parametrize("flag, expected", [
    ("--prepend-env", "/opt/bin:" + delegate.DEFAULT_PATH),
    ("--append-env", delegate.DEFAULT_PATH + ":/opt/bin"),
])
def test_prepend_to_an_unset_path_keeps_the_default_search_path(flag, expected):
    env = envlayer.build({}, resolve([flag, "PATH=/opt/bin", "--", "x"]))
    assert env["PATH"] == expected
    # Other lists start empty, as before.
    assert envlayer.build({}, resolve([flag, "LD_X=/a", "--", "x"]))["LD_X"] == "/a"


# -- 20: shim check reports every error -----------------------------------------------------
def test_check_reports_every_environment_and_file_error(tmp_path, capfd):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"supervise": {"grace": "x", "rewrite": {"CHLD": "TERM"}}, "bogus": 1}')
    code = check.main([], {"SHIM_ENV": "{", "SHIM_TIMEOUT": "x", "SHIM_REWRITE": "²:TERM",
                           "SHIM_CONFIG": str(cfg)})
    err = capfd.readouterr().err
    assert code == EXIT_USAGE
    for needle in ("SHIM_ENV", "SHIM_TIMEOUT", "SHIM_REWRITE", "$.supervise.grace",
                   "$.supervise.rewrite", "$.bogus"):
        assert needle in err, needle
    assert err.count("\n") == 6 and "Traceback" not in err


def test_check_reports_environment_errors_beside_a_malformed_file(tmp_path, capfd):
    cfg = tmp_path / "c.json"
    cfg.write_text("{")
    assert check.main(["--config", str(cfg)], {"SHIM_TIMEOUT": "x"}) == EXIT_USAGE
    err = capfd.readouterr().err
    assert "SHIM_TIMEOUT" in err and "malformed JSON" in err and err.count("\n") == 2


# -- 21: zero means "no timeout" everywhere -------------------------------------------------
@pytest.mark.parametrize("flag, attr", [("--timeout", ("supervise", "timeout")),
                                        ("--wait-timeout", ("steps", "wait_timeout")),
                                        ("--hook-timeout", ("hooks", "timeout"))])
def test_zero_timeout_means_none(flag, attr):
    for zero in ("0", "0s", "0ms", "0.0"):
        conf = resolve([flag, zero, "--", "true"])
        assert getattr(getattr(conf, attr[0]), attr[1]) is None


def test_zero_grace_stays_zero():
    assert resolve(["--grace", "0", "--", "true"]).supervise.grace == 0.0


# -- 22, 30: install checks its source and says what is in the way --------------------------
def _elf(path, machine=0x3E, e_type=2):
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + e_type.to_bytes(2, "little")
                     + machine.to_bytes(2, "little") + bytes(64))
    return path


def _text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "absent", "does not exist"),
    (lambda d: _text(d / "text", "root:x:0:0\n"), "not an ELF executable"),
    (lambda d: _elf(d / "rel", e_type=1), "not an ELF executable"),
    (lambda d: _elf(d / "riscv", machine=0xF3), "not an ELF executable"),
    (lambda d: (d / "dir").mkdir() or d / "dir", "is a directory"),
    (lambda d: (d / "link").symlink_to(d / "nowhere") or d / "link", "dangling symlink"),
])
def test_install_from_a_wrong_source_says_what_it_is(tmp_path, make, needle):
    src = make(tmp_path)
    settings = install.parse(["--from", str(src), str(tmp_path / "out")], {})
    message = usage_message(install.run, settings, {}, None)
    assert needle in message
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_install_sibling_of_the_wrong_arch_is_refused(tmp_path):
    src = _elf(tmp_path / "shim-linux-amd64")
    _elf(tmp_path / "shim-linux-arm64", machine=0x3E)  # named arm64, is amd64
    settings = install.parse(["--arch", "arm64", "--from", str(src), str(tmp_path / "out")], {})
    assert "is not a linux/arm64 ELF executable" in usage_message(install.run, settings, {}, None)


@pytest.mark.parametrize("make, needle", [
    (lambda d: (d / "out").symlink_to(d / "gone") or None, "dangling symlink"),
    (lambda d: (d / "out").mkdir() or (d / "out" / "shim").mkdir(), "is a directory where the binary"),
])
def test_install_destination_problems_name_the_cause(tmp_path, make, needle):
    src = _elf(tmp_path / "shim-linux-amd64")
    make(tmp_path)
    settings = install.parse(["--from", str(src), str(tmp_path / "out")], {})
    assert needle in usage_message(install.run, settings, {}, None)


# -- 4: a permission error mid-walk ----------------------------------------------------------
def test_install_list_reports_an_unreadable_version_and_lists_the_rest(tmp_path, monkeypatch):
    for name in ("1.0-aaa", "1.1-bbb", "1.2-ccc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "shim").write_bytes(b"x")
    real = install.os.listdir

    def listdir(path):
        if str(path).endswith("1.1-bbb"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(install.os, "listdir", listdir)
    out, said = [], []

    class Out:
        def write(self, text):
            out.append(text)

    settings = install.parse(["--list", str(tmp_path)], {})
    assert install.run(settings, {}, Out(), said.append) == EXIT_SETUP
    assert out == ["1.0-aaa shim\n", "1.2-ccc shim\n"]
    assert len(said) == 1 and "1.1-bbb: permission denied" in said[0]


# -- 24, 25, 29: config messages -------------------------------------------------------------
def test_a_section_that_is_not_an_object_says_so():
    message = usage_message(options.parse_config, {"supervise": 5})
    assert "section supervise must be an object, got a number" in message
    assert "unknown key" not in message


def test_profiles_have_the_files_shape():
    doc = {"command": ["a"], "profiles": {"p": {"command": ["b"], "log_level": "debug",
                                                "supervise": {"grace": "1s"}}}}
    values = options.parse_config(doc, "p")
    assert values["command"] == ["b"] and values["grace"] == 1.0


def test_a_number_where_a_string_belongs_says_number():
    message = usage_message(options.parse_config, {"env": {"set": {"A": 1}}})
    assert "expected a string, got a number" in message and "NUL" not in message


# -- 26: nested fallbacks; expansion errors name their source ---------------------------------
def test_nested_fallbacks():
    env = {"HOME": "/h", "E": ""}
    assert envlayer.expand("${X:-${HOME}}", env) == "/h"
    assert envlayer.expand("${X:-a-${Y:-${E:-deep}}-b}/c", env) == "a-deep-b/c"
    assert envlayer.expand("${HOME:-${X}}", env) == "/h"
    assert envlayer.expand("${X-${HOME}}", env) == "/h"
    conf = resolve(["-e", "A=${X:-${HOME}}", "--", "x"])
    assert envlayer.build(env, conf)["A"] == "/h"


@pytest.mark.parametrize("argv, environ, doc, where", [
    (["-e", "A=${X"], {}, None, "--env A"),
    (["--default-env", "B=${1}"], {}, None, "--default-env B"),
    ([], {"SHIM_ENV": "C=${X:-${Y}"}, None, "SHIM_ENV C"),
    ([], {}, {"env": {"prepend": {"PATH": "${"}}}, "$.env.prepend PATH"),
])
def test_expansion_errors_name_the_option_and_variable(argv, environ, doc, where, tmp_path):
    if doc is not None:
        import json

        cfg = tmp_path / "c.json"
        cfg.write_text(json.dumps(doc))
        argv = ["--config", str(cfg)] + argv
    conf = resolve(argv + ["--", "x"], environ)
    message = usage_message(envlayer.build, {}, conf)
    assert message.startswith(f"parse {where}:"), message


def test_env_file_expansion_errors_name_file_line_and_variable():
    assert "f.env line 2 B:" in usage_message(envlayer.parse_dotenv, "A=1\nB=${A", "f.env")


# -- 27: messages name the source the value came from ------------------------------------------
@pytest.mark.parametrize("argv, environ, where", [
    (["--entrypoint", 'echo "x'], {}, "--entrypoint"),
    ([], {"SHIM_ENTRYPOINT": 'echo "x'}, "SHIM_ENTRYPOINT"),
    (["--image-entrypoint", "[1]"], {}, "--image-entrypoint"),
    ([], {"SHIM_IMAGE_ENTRYPOINT": "[1]"}, "SHIM_IMAGE_ENTRYPOINT"),
    ([], {"SHIM_IMAGE_ENTRYPOINT": '{"Entrypoint": "a \\"b"}'}, "SHIM_IMAGE_ENTRYPOINT Entrypoint"),
])
def test_command_errors_name_their_source(argv, environ, where):
    message = usage_message(delegate.command_from, resolve(argv, environ))
    assert message.startswith(f"parse {where}:"), message


def test_file_entrypoint_errors_name_the_json_path(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"entrypoint": "a \'b"}')
    message = usage_message(delegate.command_from, resolve(["--config", str(cfg)]))
    assert message.startswith("parse $.entrypoint:"), message


# -- 28: an empty command name --------------------------------------------------------------
@pytest.mark.parametrize("argv, environ", [(["--", ""], {}), (["--", "", "x"], {}),
                                          ([], {"SHIM_ENTRYPOINT": "'' x"}),
                                          (["--image-entrypoint", '[""]'], {})])
def test_an_empty_command_name_is_a_usage_error(argv, environ):
    assert "command name is empty" in usage_message(delegate.command_from, resolve(argv, environ))


# -- 31: the small ones ------------------------------------------------------------------------
@pytest.mark.parametrize("arg", ["--exec=no", "--supervise=false", "--exec=yes", "--supervise="])
def test_mode_flags_take_no_value(arg):
    assert "takes no value" in usage_message(resolve, [arg, "--", "true"])


def test_bool_flags_honour_their_value():
    assert resolve(["--signal-group=no", "--", "x"]).supervise.signal_group is False
    assert resolve(["--subreaper=false", "--", "x"]).supervise.subreaper is False


@pytest.mark.parametrize("pair, shown", [("a:b", '"a"'), ("1:b", '"b"'), ("1_0:0", '"1_0"'),
                                         ("256:0", "256"), ("-1:0", '"-1"'), ("+1:0", '"+1"')])
def test_exit_remap_names_the_bad_side(pair, shown):
    assert shown in usage_message(resolve, ["--exit-remap", pair, "--", "x"])


@pytest.mark.parametrize("value", [2.9, 2.0, True, None, "2.9", [1]])
def test_exit_remap_file_values_are_whole_numbers(value):
    usage_message(options.parse_config, {"supervise": {"exit_remap": {"1": value}}})


@pytest.mark.parametrize("raw", [True, None, [1], {"a": 1}])
def test_messages_show_json_not_python_reprs(raw):
    errors = []
    options.parse_config({"log_level": raw, "supervise": {"grace": raw, "mode": raw},
                          "steps": {"on_error": raw}}, None, errors)
    for _, err in errors:
        for repr_word in ("True", "None", "'"):
            assert repr_word not in err.message(), err.message()


def test_profile_missing_is_shown_as_json():
    message = usage_message(options.parse_config, {"profile": "it's"})
    assert '"it\'s"' in message


def test_dotenv_accepts_a_bom_and_export_tab():
    text = "\ufeffA=1\nexport\tB=2\nexport  C=3\r\nD='x'\r\n"
    assert dict(envlayer.parse_dotenv(text, "f")) == {"A": "1", "B": "2", "C": "3", "D": "x"}


@pytest.mark.parametrize("pair", ["CHLD:TERM", "SIGCHLD:TERM", "chld:INT", "TERM:KILL",
                                  "TERM:STOP", "KILL:TERM"])
def test_rewrite_of_a_signal_that_never_acts_is_refused(pair):
    usage_message(resolve, ["--rewrite", pair, "--", "x"])


def test_rewrite_to_chld_is_allowed():
    import signal

    conf = resolve(["--rewrite", "USR1:CHLD", "--", "x"])
    assert conf.supervise.rewrite == {signal.SIGUSR1: signal.SIGCHLD}


@pytest.mark.parametrize("name, offset", [("RTMIN", 0), ("RTMIN+1", 1), ("SIGRTMIN+3", 3),
                                          ("rtmin+2", 2), ("RTMAX", None), ("RTMAX-1", -1)])
def test_realtime_signals_agree_with_the_schema(name, offset):
    import re
    import signal

    pattern = schema()["properties"]["supervise"]["properties"]["rewrite"]["additionalProperties"]
    assert re.search(pattern["pattern"], name)
    expected = signal.SIGRTMIN + offset if offset is not None and offset >= 0 else \
        signal.SIGRTMAX + (offset or 0)
    assert kinds.parse_signal(name, "x") == expected


@pytest.mark.parametrize("name", ["RTMIN+99", "RTMAX-99", "RTMIN-1", "RTMAX+1", "RTMIN+", "SIG_DFL"])
def test_realtime_signals_out_of_range_are_refused(name):
    usage_message(kinds.parse_signal, name, "x")


def test_an_env_file_larger_than_any_environment_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.env"
    with open(big, "wb") as f:
        f.truncate(envlayer.ENV_FILE_LIMIT + 1)  # sparse: no 16 MiB written
    message = usage_message(envlayer._read_env_file, str(big))
    assert "larger than 16 MiB" in message


def test_a_stop_signal_ends_env_file_parsing_with_128_plus_n():
    import signal

    calls = []

    def stop():
        calls.append(1)
        return signal.SIGTERM if len(calls) > 2 else None

    text = "A=1\n" * (envlayer.STOP_EVERY * 4)
    with pytest.raises(ShimError) as info:
        envlayer.parse_dotenv(text, "f", {}, stop)
    assert info.value.code == 128 + signal.SIGTERM and info.value.reason == "interrupted"
    assert len(calls) == 3  # asked every STOP_EVERY lines, not per line
