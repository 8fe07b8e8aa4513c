"""References inside longer text (shim.sources.embedded) and how plan/fetch compose them
(shim.run.secrets), with fake values: start, middle and end of a value, two in one value,
a '+' inside a JSON-pointer fragment, secretref+, malformed ones (column), words like xref+."""

import json

import pytest

from shim.config import options
from shim.errors import ShimError
from shim.run import secrets
from shim.sources import embedded
from shim.sources.embedded import Composite, EmbeddedError, scan
from shim.sources.fetch import Result


def render(text, values):
    spans = scan(text)
    return Composite(text, spans).render([values[s.ref.raw] for s in spans])


VALUES = {"ref+vault://secret/db#/password": "PW", "ref+env://USER": "app",
          "ref+vault://secret/db#/a%2Bb": "PLUS", "ref+vault://secret/db": "WHOLE"}


@pytest.mark.parametrize("text,want", [
    ("ref+vault://secret/db#/password+-suffix", "PW-suffix"),                  # start
    ("postgres://app:ref+vault://secret/db#/password+@db:5432/app",
     "postgres://app:PW@db:5432/app"),                                          # middle
    ("prefix-ref+vault://secret/db#/password", "prefix-PW"),                   # end, no '+'
    ("prefix-ref+vault://secret/db#/password+", "prefix-PW"),                  # end, '+'
    ("u=ref+env://USER+ p=ref+vault://secret/db#/password+!", "u=app p=PW!"),  # two
    ("ref+env://USER+ref+vault://secret/db#/password+", "appPW"),              # back to back
    ("k=ref+vault://secret/db#/a%2Bb+;", "k=PLUS;"),                           # '+' in fragment
    ('{"pw": "ref+vault://secret/db#/password"}', '{"pw": "PW"}'),             # quote ends it
    ("a ref+env://USER\nb", "a app\nb"),                                       # whitespace ends it
    ("xref+vault://nope and preref+x", "xref+vault://nope and preref+x"),      # words
])
def test_compose(text, want):
    assert render(text, VALUES) == want


def test_plus_inside_fragment_is_percent_encoded():
    (span,) = scan("ref+vault://secret/db#/a%2Bb+tail")
    assert span.ref.pointer == ("a+b",) and span.end == len("ref+vault://secret/db#/a%2Bb+")


def test_secretref_marks_the_span():
    spans = scan("x=secretref+vault://secret/db#/password+ y=ref+env://USER")
    assert [s.secret for s in spans] == [True, False]
    assert spans[0].start == 2
    assert Composite("", spans).secret


def test_whole_reference_is_the_classic_form():
    text = "ref+vault://secret/db"
    assert embedded.is_whole(text, scan(text))
    assert not embedded.is_whole("secretref+vault://secret/db", scan("secretref+vault://secret/db"))
    assert not embedded.is_whole("ref+env://USER+x", scan("ref+env://USER+x"))


@pytest.mark.parametrize("text,column,cause", [
    ("abc ref+ def", 5, "expected ref+SCHEME://PATH"),
    ("ref+vault:secret/x", 1, "expected ref+SCHEME://PATH"),
    ("pw=ref+nope://x+", 4, "unknown scheme"),
    ("ok ref+env://USER+ then ref+vault://+", 25, "Vault path"),
    ("x-secretref+env://1BAD", 3, "variable name"),
    ("ref+env://A?colour=red", 1, "unknown query parameter"),
])
def test_malformed_names_the_column(text, column, cause):
    with pytest.raises(EmbeddedError) as info:
        scan(text)
    assert info.value.column == column
    assert cause in str(info.value) and f"column {column}" in str(info.value)


def test_value_that_cannot_be_text():
    spans = scan("a=ref+vault://secret/db+")
    with pytest.raises(ValueError, match="column 3 is a JSON object"):
        Composite("a=ref+vault://secret/db+", spans).render([{"k": "v"}])
    with pytest.raises(ValueError, match="binary"):
        Composite("a=ref+vault://secret/db+", spans).render([b"\xff"])
    assert Composite("n=ref+vault://secret/db+", spans).render([3]) == "n=3"
    assert Composite("a=ref+vault://secret/db+", spans).render([None]) is None


# -- plan and compose in shim.run.secrets ---------------------------------------------------
def cfg(argv=(), doc=None, tmp_path=None):
    if doc is not None:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(doc))
        argv = ["--config", str(path), *argv]
    return options.resolve(list(argv) + ["--", "true"], {})


def test_plan_env_in_place_items_and_flags(tmp_path):
    c = cfg(["--secret", "DSN=pg://ref+env://USER+@h", "--secret-file",
             str(tmp_path / "f") + "=pw: ref+vault://secret/db#/password"],
            doc={"secrets": [{"ref": "pre-ref+env://USER+-post", "env": "ITEM"}]},
            tmp_path=tmp_path)
    env = {"URL": "postgres://app:ref+vault://secret/db#/password+@db/app", "PLAIN": "xref+y",
           "WHOLE": "ref+vault://secret/db"}
    targets = secrets.plan(c, env)
    by = {t.dest: t for t in targets}
    assert set(by) == {"DSN", str(tmp_path / "f"), "ITEM", "URL", "WHOLE"}
    assert by["WHOLE"].compose is None
    assert [i.ref.raw for i in by["URL"].items] == ["ref+vault://secret/db#/password"]
    pairs = [(t, secrets._composed(t, [Result(i, VALUES[i.ref.raw]) for i in t.items]))
             for t in targets]
    assert secrets.variables(pairs) == {"DSN": "pg://app@h", "ITEM": "pre-app-post",
                                        "URL": "postgres://app:PW@db/app", "WHOLE": "WHOLE"}
    masked = secrets.mask_values(pairs)
    assert "PW" in masked and "app" in masked and "postgres://app:PW@db/app" not in masked


def test_secretref_masks_the_whole_text():
    c = cfg()
    (t,) = secrets.plan(c, {"X": "u:secretref+env://USER+:v"})
    pair = (t, secrets._composed(t, [Result(t.item, "app")]))
    assert secrets.mask_values([pair]) == ["app", "u:app:v"]


def test_malformed_in_place_names_variable_and_column():
    with pytest.raises(ShimError) as info:
        secrets.plan(cfg(), {"DB_URL": "postgres://app:ref+vault:/secret@db"})
    msg = info.value.message()
    assert "variable DB_URL" in msg and "column 16" in msg and info.value.code == 125


def test_embedded_in_a_dir_target_is_refused():
    with pytest.raises(ShimError, match="one text value"):
        secrets.plan(cfg(["--secret-dir", "/run/d=x-ref+vault://secret/db"]), {})


def test_optional_missing_piece_leaves_the_target_out():
    (t,) = secrets.plan(cfg(), {"X": "a-ref+env://NOPE?optional=true+-b"})
    assert t.items[0].ref.optional
    result = secrets._composed(t, [Result(t.item, None)])
    assert result.value is None and secrets.variables([(t, result)]) == {}


def test_whole_reference_with_a_trailing_plus_is_the_reference():
    (t,) = secrets.plan(cfg(["--secret-env-prefix", "APP_=ref+vault://secret/db#/cfg+"]), {})
    assert t.compose is None and t.item.ref.pointer == ("cfg",)
