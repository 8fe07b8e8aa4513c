"""shim.util.jsonio.scan: json.loads without importing json on the way (issue 17's cold
start), checked against json.loads itself, errors included."""

import json
import subprocess
import sys

import pytest
from hypothesis import example, given, strategies as st

from shim.sources.base import JsonNumber
from shim.util.jsonio import scan

documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)
texts = st.text(alphabet=st.sampled_from('{}[]":,0123456789.eE-+ \t\n\rtruefalsnul\\u00é\x01'), max_size=30)


@given(documents)
def test_well_formed_documents_read_as_json_reads_them(doc):
    text = json.dumps(doc)
    assert scan(text) == json.loads(text)
    assert scan(" \n" + text + "\t\r ") == json.loads(text)
    assert scan(text.encode()) == json.loads(text)


@given(texts)
@example("")
@example("   ")
@example('"abc')  # unterminated: the C scanner alone would raise SystemError
@example('{"a" 1}')
@example("[1,]")
@example("1 2")  # extra data
@example("\ufeff{}")  # a BOM, which json refuses in text
@example("NaN")
@example("-Infinity")
@example('"\\x"')
@example('"a\x01"')  # a control character: strict, as json
def test_anything_reads_as_json_or_fails_as_json(text):
    try:
        want = json.loads(text)
    except json.JSONDecodeError as err:
        with pytest.raises(ValueError) as info:
            scan(text)
        assert str(info.value) == str(err)
    else:
        got = scan(text)
        assert got == want or (got != got and want != want)  # NaN


def test_numbers_can_keep_their_text():
    assert scan('{"n": 1.5e3, "i": 007}'.replace("007", "7"), number=JsonNumber) == {"n": "1.5e3", "i": "7"}
    assert isinstance(scan("[1.50]", number=JsonNumber)[0], JsonNumber)


def test_deep_nesting_is_a_value_error():
    with pytest.raises(ValueError, match="nested too deeply|recursion"):
        scan("[" * 200000 + "]" * 200000)


def test_a_well_formed_read_never_imports_json():
    code = ("import sys; from shim.util.jsonio import scan; "
            "assert scan(b'{\"data\": {\"data\": {\"p\": \"v\"}}, \"n\": [1, 2.5, null]}')['n'][1] == 2.5; "
            "print(sorted(m for m in ('json', 're') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
