"""Typed settings (issue 17): one annotated class per config section, generated from the
option table into shim/config/options.py by scripts/gen-settings.

Fails when an option is added without regenerating, when an option's field has the wrong
type for its kind, and when a misspelt attribute would get past mypy or run time.
"""

import importlib.machinery
import importlib.util
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from shim.config import option as k, options
from shim.config.kinds import convert

REPO = Path(__file__).resolve().parents[2]


def _generator():
    path = REPO / "scripts" / "gen-settings"
    loader = importlib.machinery.SourceFileLoader("gen_settings", str(path))
    spec = importlib.util.spec_from_loader("gen_settings", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_committed_settings_are_generated_from_the_table():
    gen = _generator()
    text = (REPO / "shim" / "config" / "options.py").read_text(encoding="utf-8")
    assert gen.splice(text, gen.render()) == text, \
        "the option table changed: run scripts/gen-settings and commit shim/config/options.py"


# What each kind's converter (shim.config.kinds) returns; `| None` when the default is None.
# Written out here, apart from the generator, so a wrong mapping there fails here.
KIND_TYPES = {
    k.STR: "str", k.PATH: "str", k.ENUM: "str", k.BOOL: "bool", k.DURATION: "float | None",
    k.INT: "int", k.SIZE: "int", k.LIST: "list[str]", k.MAP: "dict[str, str]",
    k.SIGNAL_MAP: "dict[int, int]", k.EXIT_MAP: "dict[int, int]",
    k.JSON: "dict[str, Any] | list[Any]", k.COMMAND_MAP: "dict[str, list[str]]",
    k.TEMPLATE_LIST: "list[dict[str, Any]]",
}


def _owner(opt):
    return options.SECTION_TYPES[opt.section] if opt.section else options.TopLevel


def _annotation(opt):
    cls = _owner(opt)
    for klass in cls.__mro__:
        if opt.attr in klass.__dict__.get("__annotations__", {}):
            return klass.__dict__["__annotations__"][opt.attr]
    raise AssertionError(f"{cls.__name__} has no annotated field {opt.attr} ({opt.name})")


@pytest.mark.parametrize("opt", options.OPTIONS, ids=lambda o: o.name)
def test_every_option_is_an_annotated_field_of_its_kind(opt):
    expected = KIND_TYPES[opt.kind]
    if opt.default is None and "None" not in expected:
        expected += " | None"
    assert _annotation(opt) == expected
    assert opt.attr in _owner(opt).__slots__


def test_every_section_is_a_typed_attribute_of_the_config():
    assert set(options.SECTION_TYPES) == set(options.SECTIONS)
    for section, cls in options.SECTION_TYPES.items():
        assert options.TopLevel.__annotations__[section] == cls.__name__
        # no field without an option behind it
        assert set(cls.__slots__) == {o.attr for o in options.OPTIONS if o.section == section}


def _conforms(value, tp):
    """isinstance for the annotations used here (unions, list[...], dict[...], Any)."""
    if tp is typing.Any:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(x, args[0]) for x in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(a, args[0]) and _conforms(b, args[1])
                                               for a, b in value.items())
    if tp is float:
        return isinstance(value, float)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_of(opt):
    return eval(_annotation(opt), {"Any": typing.Any})  # noqa: S307  (our own annotation text)


# One valid raw value per kind, as a flag would give it.
SAMPLES = {
    k.STR: "x", k.PATH: "/p", k.BOOL: "true", k.DURATION: "2s", k.LIST: ["a"],
    k.JSON: '{"a": 1}', k.COMMAND_MAP: '{"t": ["x"]}', k.INT: "3", k.SIZE: "64k",
    k.TEMPLATE_LIST: ["/a=/b"], k.SIGNAL_MAP: ["TERM{sep}QUIT"], k.EXIT_MAP: ["1{sep}0"],
    k.MAP: ["A{sep}B"],
}


@pytest.mark.parametrize("opt", options.OPTIONS, ids=lambda o: o.name)
def test_defaults_and_converted_values_have_the_annotated_type(opt):
    tp = _type_of(opt)
    assert _conforms(opt.default, tp), (opt.name, opt.default)
    raw = opt.choices[0] if opt.kind == k.ENUM else SAMPLES[opt.kind]
    if isinstance(raw, list):
        raw = [item.format(sep=opt.sep) for item in raw]
    value = convert(opt, raw, opt.flags[0])
    assert _conforms(value, tp), (opt.name, value)


def test_a_resolved_config_is_typed_and_frozen():
    config = options.resolve(["--grace", "3s", "--", "true"], {})
    assert isinstance(config.supervise, options.SuperviseSettings)
    assert config.supervise.grace == 3.0 and config.value("grace") == 3.0
    assert config.source_of("grace") == "--grace" and config.source_of("timeout") == "--timeout"
    for opt in options.OPTIONS:
        assert _conforms(config.value(opt.name), _type_of(opt)), opt.name
    with pytest.raises(AttributeError):
        config.supervise.gracee  # noqa: B018
    with pytest.raises(AttributeError):
        config.log_levell  # noqa: B018
    with pytest.raises(AttributeError):
        config.supervise.grace = 1.0
    with pytest.raises(AttributeError):
        config.log_level = "debug"
    with pytest.raises(AttributeError):
        del config.supervise.grace


def test_mypy_rejects_a_misspelt_or_mistyped_setting(tmp_path):
    snippet = tmp_path / "use_settings.py"
    snippet.write_text(
        "from shim.config.options import Config\n"
        "def ok(config: Config) -> float | None:\n"
        "    return config.supervise.grace\n"
        "def misspelt(config: Config) -> object:\n"
        "    return config.supervise.gracee\n"
        "def mistyped(config: Config) -> int:\n"
        "    return config.logs.sinks\n"
        "def assigned(config: Config) -> None:\n"
        "    config.supervise.gracee = 1.0\n")
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir=/dev/null",
                        "--config-file=", "--follow-imports=silent", "--ignore-missing-imports",
                        "--python-version=3.11", str(snippet)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert ':5: error: "SuperviseSettings" has no attribute "gracee"' in out, out
    assert ":7: error: Incompatible return value type" in out, out
    assert ':9: error: "SuperviseSettings" has no attribute "gracee"' in out, out
    assert ":3:" not in out, out
