"""The template language (shim.run.templates) with fake fetches: ${VAR}, ${VAR:-fallback}
(nested ${} and references), $$, a lone $, embedded references; errors with line and
column; untaken fallbacks fetch nothing; non-UTF-8 bytes pass through; linear parse."""

import pytest

from shim.errors import ShimError
from shim.run import templates
from shim.run.templates import TemplateError, needed, parse, render
from shim.sources.fetch import Result
from support import count_work


def run(text, env, values=None):
    nodes = parse(text)
    spans = needed(nodes, env)
    return render(nodes, env, {id(s): (values or {})[s.ref.raw] for s in spans})


@pytest.mark.parametrize("text,want", [
    ("a ${A} b", "a 1 b"),
    ("${NOPE:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${NOPE:-${A}-${NOPE2:-x}}", "1-x"),
    ("${NOPE:-ref+vault://secret/db#/pw}", "PW"),
    ("${A:-ref+vault://secret/none}", "1"),       # untaken: never fetched
    ("cost: $$5 and $5 and $ and $${A}", "cost: $5 and $5 and $ and ${A}"),
    ("pw: ref+vault://secret/db#/pw+!\n", "pw: PW!\n"),
    ("{json: }} ${A}}", "{json: }} 1}"),
    ("${NOPE:-}", ""),
])
def test_render(text, want):
    assert run(text, {"A": "1", "EMPTY": ""}, {"ref+vault://secret/db#/pw": "PW"}) == want


def test_untaken_fallback_references_are_not_needed():
    nodes = parse("${A:-ref+vault://secret/none} ref+env://B")
    assert [s.ref.raw for s in needed(nodes, {"A": "x"})] == ["ref+env://B"]
    assert len(needed(nodes, {})) == 2


@pytest.mark.parametrize("text,offset,cause", [
    ("ok\n  ${1A}", 5, "variable name"),
    ("${A", 0, "unterminated"),
    ("x ${A:-abc", 10, "unterminated"),
    ("${A?err}", 3, "unexpected"),
    ("line\nurl: ref+nope://x", 10, "unknown scheme"),
])
def test_syntax_errors_have_offsets(text, offset, cause):
    with pytest.raises(TemplateError) as info:
        parse(text)
    assert info.value.offset == offset and cause in info.value.cause


def test_missing_variable_without_fallback():
    with pytest.raises(TemplateError) as info:
        run("a\nb ${NOPE}", {})
    assert info.value.offset == 4 and "NOPE is not set" in info.value.cause
    assert templates.position("a\nb ${NOPE}", 4) == (2, 3)


def test_render_all_names_source_line_column_and_writes_nothing(tmp_path):
    good, bad = tmp_path / "good.tmpl", tmp_path / "bad.tmpl"
    good.write_text("x=${A}\n")
    bad.write_text("first\nsecond ${NOPE}\n")
    ts = [templates.Template(str(good), None, str(tmp_path / "out1"), None, None, None, None, "w"),
          templates.Template(str(bad), None, str(tmp_path / "out2"), None, None, None, None, "w")]
    with pytest.raises(ShimError) as info:
        templates.render_all(ts, {"A": "1"}, lambda items: [])
    msg = info.value.message()
    assert "bad.tmpl: line 2 column 8: variable NOPE" in msg and info.value.code == 125
    assert not (tmp_path / "out1").exists()


def test_modes_secret_and_plain_and_non_utf8(tmp_path):
    plain, secret = tmp_path / "plain.tmpl", tmp_path / "secret.tmpl"
    plain.write_bytes(b"\xff\xfe ${A} \x00\n")
    secret.write_text("pw=ref+env://PW\n")
    ts = [templates.Template(str(plain), None, str(tmp_path / "p"), None, None, None, None, "w"),
          templates.Template(str(secret), None, str(tmp_path / "s"), None, None, None, None, "w")]
    asked = []

    def fetch(items):
        asked.extend(i.ref.raw for i in items)
        return [Result(i, "hunter22") for i in items]

    out = templates.render_all(ts, {"A": "1"}, fetch)
    out.write()
    assert asked == ["ref+env://PW"] and out.values == ["hunter22"]
    assert (tmp_path / "p").read_bytes() == b"\xff\xfe 1 \x00\n"
    assert (tmp_path / "s").read_text() == "pw=hunter22\n"
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o400
    assert out.write(only_changed=True) == []


def test_optional_missing_reference_skips_the_file(tmp_path):
    src = tmp_path / "t"
    src.write_text("pw=ref+env://NOPE?optional=true\n")
    t = templates.Template(str(src), None, str(tmp_path / "o"), None, None, None, None, "w")
    logged = []
    out = templates.render_all([t], {}, lambda items: [Result(i, None) for i in items],
                               lambda level, m: logged.append(m))
    out.write()
    assert not (tmp_path / "o").exists() and "ref+env://NOPE?optional=true" in logged[0]


@pytest.mark.parametrize("unit", ["${A:-${B:-x}}", "$$", "ref+env://A+", "${A}", "}", "$x"])
def test_parse_is_linear(unit):
    small = count_work(parse, unit * 300)
    large = count_work(parse, unit * 600)
    assert large <= 2.3 * small + 300, (unit, small, large)
