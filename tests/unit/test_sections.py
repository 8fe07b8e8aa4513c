"""Typed config sections (issue 7, item 3): complete, immutable, and a section the
binary does not implement is refused by the parser and by the schema alike."""

import jsonschema
import pytest

from shim.config import options
from shim.config.schema import schema
from shim.config.table import UNSUPPORTED_SECTIONS
from shim.errors import EXIT_USAGE, ShimError


def test_every_sectioned_option_is_an_attribute_of_its_section():
    conf = options.resolve(["--", "true"], {})
    for opt in options.OPTIONS:
        if opt.section:
            assert getattr(getattr(conf, opt.section), opt.attr) == conf.value(opt.name)
    assert set(options.SECTIONS) == {o.section for o in options.OPTIONS if o.section}


def test_sections_are_immutable_and_reject_unknown_attributes():
    conf = options.resolve(["--", "true"], {})
    with pytest.raises(AttributeError):
        conf.supervise.grace = 1
    with pytest.raises(AttributeError):
        conf.supervise.no_such_setting  # noqa: B018


@pytest.mark.parametrize("section", list(UNSUPPORTED_SECTIONS) or ["tracing"])
def test_unsupported_sections_are_refused_by_parser_and_schema(section, monkeypatch):
    # Every planned section is implemented today; the mechanism is kept for the next one.
    monkeypatch.setattr(options, "UNSUPPORTED_SECTIONS", (section,))
    with pytest.raises(ShimError) as info:
        options.parse_config({section: {}})
    assert info.value.code == EXIT_USAGE and "not supported by this version" in info.value.message()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({section: {}}, schema())
    errors = []
    options.parse_config({"profiles": {"p": {section: {"x": 1}}}}, None, errors)
    assert [path for path, _ in errors] == [f"$.profiles.p.{section}"]
