"""Policy of the option table: durations, layers, precedence, errors."""

import signal

import pytest

from shim.config import kinds, options
from shim.errors import EXIT_USAGE, ShimError


@pytest.mark.parametrize("text,seconds", [
    ("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), ("1h", 3600.0), ("1m30s", 90.0),
    ("1.5s", 1.5), ("7", 7.0), ("0.25", 0.25), (3, 3.0), (0, 0.0), (" 2s ", 2.0),
])
def test_durations(text, seconds):
    assert kinds.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "-1", "s", "1..2s", "ms", "1h-2m", "nan",
                                  "inf", True, -5])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        kinds.parse_duration(text)


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"supervise": {"grace": "3s", "timeout": "4s"}, "hooks": {"timeout": "5s"}}')
    conf = options.resolve(["--config", str(cfg), "--grace", "1s", "--", "true"],
                           {"SHIM_GRACE": "2s", "SHIM_TIMEOUT": "6s"})
    assert conf.supervise.grace == 1.0 and conf.sources["grace"] == "flag"
    assert conf.supervise.timeout == 6.0 and conf.sources["timeout"] == "env"
    assert conf.hooks.timeout == 5.0 and conf.sources["hook_timeout"] == "file"
    assert conf.steps.wait_timeout is None and conf.sources["wait_timeout"] == "default"
    assert conf.command == ("true",)


def test_config_is_immutable():
    conf = options.resolve(["--", "true"], {})
    with pytest.raises(AttributeError):
        conf.supervise.grace = 3


def test_every_option_is_flag_env_and_key():
    for opt in options.OPTIONS:
        assert opt.flags and opt.flags[0].startswith("--")
        assert opt.env == "SHIM_" + opt.name.upper()
        if opt.name != "config":
            assert opt.key, opt.name


def test_repeatable_flags_and_maps():
    conf = options.resolve(["--wait-file", "/a", "--wait-file=/b", "-e", "A=1", "--env", "B=x=y",
                            "--rewrite", "TERM:QUIT", "--rewrite", "SIGINT:15",
                            "--exit-remap", "143:0", "--", "cmd"], {})
    assert conf.steps.wait_files == ["/a", "/b"]
    assert conf.env.set == {"A": "1", "B": "x=y"}
    assert conf.supervise.rewrite == {signal.SIGTERM: signal.SIGQUIT, signal.SIGINT: signal.SIGTERM}
    assert conf.supervise.exit_remap == {143: 0}


def test_env_lists_accept_json_or_commas():
    conf = options.resolve(["--", "x"], {"SHIM_WAIT_FILE": '["/a,b", "/c"]',
                                         "SHIM_REWRITE": "TERM:QUIT, INT:TERM",
                                         "SHIM_ENV": '{"A": "1"}'})
    assert conf.steps.wait_files == ["/a,b", "/c"]
    assert conf.supervise.rewrite == {signal.SIGTERM: signal.SIGQUIT, signal.SIGINT: signal.SIGTERM}
    assert conf.env.set == {"A": "1"}


def test_mode_aliases_and_bool_negation():
    assert options.resolve(["--exec", "--", "x"], {}).supervise.mode == "exec"
    assert options.resolve(["--supervise", "--", "x"], {}).supervise.mode == "supervise"
    assert options.resolve(["--no-subreaper", "--", "x"], {}).supervise.subreaper is False
    assert options.resolve(["--", "x"], {"SHIM_SIGNAL_GROUP": "yes"}).supervise.signal_group is True


def test_command_starts_at_first_word_without_dashdash():
    conf = options.resolve(["--grace", "1", "sleep", "--grace", "5"], {})
    assert conf.command == ("sleep", "--grace", "5")


@pytest.mark.parametrize("argv,obj", [
    (["--frobnicate", "--", "x"], "option --frobnicate"),
    (["--grace"], "option --grace"),
    (["--grace", "soon", "--", "x"], "--grace"),
    (["--rewrite", "TERM", "--", "x"], "--rewrite"),
    (["--rewrite", "TERM:KILL", "--", "x"], "--rewrite"),
    (["--exit-remap", "300:0", "--", "x"], "--exit-remap"),
    (["--on-error", "maybe", "--", "x"], "--on-error"),
    (["--signal-group=perhaps", "--", "x"], "--signal-group"),
])
def test_bad_flags_are_usage_errors(argv, obj):
    with pytest.raises(ShimError) as info:
        options.resolve(argv, {})
    err = info.value
    assert err.code == EXIT_USAGE
    assert obj in err.message()
    assert "\n" not in err.message() and "; " in err.message()


def test_bad_env_names_the_variable():
    with pytest.raises(ShimError) as info:
        options.resolve(["--", "x"], {"SHIM_TIMEOUT": "forever"})
    assert "SHIM_TIMEOUT" in info.value.message()


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ShimError) as info:
        options.resolve(["--config", str(bad), "--", "x"], {})
    assert "malformed JSON" in info.value.message() and info.value.code == EXIT_USAGE
    with pytest.raises(ShimError) as info:
        options.resolve(["--config", str(tmp_path / "missing.json"), "--", "x"], {})
    assert "read config" in info.value.message()


def test_profiles_overlay_the_file(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"supervise": {"grace": "3s"}, "profile": "k8s",'
                   ' "profiles": {"k8s": {"supervise": {"grace": "7s"}}, "sm": {"supervise": {"grace": "9s"}}}}')
    assert options.resolve(["--config", str(cfg), "--", "x"], {}).supervise.grace == 7.0
    assert options.resolve(["--config", str(cfg), "--profile", "sm", "--", "x"], {}).supervise.grace == 9.0
    with pytest.raises(ShimError):
        options.resolve(["--config", str(cfg), "--profile", "nope", "--", "x"], {})


def test_collecting_errors_reports_json_paths():
    errors = []
    options.parse_config({"supervise": {"grace": "x", "nope": 1}, "steps": {"wait_files": "a"},
                          "profiles": {"p": {"hooks": {"failure": "explode"}}}}, None, errors)
    paths = sorted(p for p, _ in errors)
    assert paths == ["$.profiles.p.hooks.failure", "$.steps.wait_files", "$.supervise.grace",
                     "$.supervise.nope"]


def test_config_command_and_unsupported_sections():
    assert options.parse_config({"command": ["a", "b"]}) == {"command": ["a", "b"]}
    errors = []
    options.parse_config({"command": ["a"], "metrics": {"x": 1}, "logs": {}}, None, errors)
    # Every section is read since issue 11: only the unknown key is an error.
    assert [p for p, _ in errors] == ["$.metrics.x"]


def test_help(capsys):
    text = options.render_help(full=True)  # --help-all; --help: tests/unit/test_capabilities.py
    for opt in options.OPTIONS:
        assert opt.flags[0] in text and opt.env in text
