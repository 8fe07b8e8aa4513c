"""The README's config-file paragraph names every section the option table has, and says
none is refused (it once called logs/metrics/heartbeat/relay "not supported")."""

import re
from pathlib import Path

from shim.config import options
from shim.config.table import UNSUPPORTED_SECTIONS

README = (Path(__file__).parents[2] / "README.md").read_text()


def paragraph():
    start = README.index("The file's sections are those of the options table")
    return README[start:README.index("\n\n", start)]


def test_every_section_and_top_level_key_is_named():
    text = paragraph()
    named = set(re.findall(r"`([a-z_]+)`", text))
    assert set(options.SECTIONS) <= named, set(options.SECTIONS) - named
    top = {o.key for o in options.OPTIONS if o.key and "." not in o.key}
    assert top <= named, top - named


def test_no_section_is_described_as_refused():
    assert "not supported by this version" not in README or UNSUPPORTED_SECTIONS
    assert "reserved for the capabilities" not in README
