"""The mask registry and its automaton (shim.util.mask), the credential registration of
the sources (shim.sources.base) and the redaction of messages (shim.errors.redact).
In-process, no sleeping."""

import base64
import io

import pytest

from shim import errors
from shim.errors import ShimError
from shim.log import Log
from shim.sources import base
from shim.util import mask
from shim.util.mask import MASK, Masker, pieces


def masker(*values, budget=mask.BUDGET):
    m = Masker(budget)
    for v in values:
        m.add_secret(v)
    return m


def stream_all(m, data, cuts):
    s, out, last = m.stream(), b"", 0
    for cut in list(cuts) + [len(data)]:
        out += s.feed(data[last:cut])
        last = cut
    return out + s.flush(), s


# -- what is masked --------------------------------------------------------------------
def test_overlapping_occurrences_become_one_mask_adjacent_ones_two():
    m = masker("abcd", "cdef", "secret")
    assert m.scrub(b"x abcdef y") == b"x *** y"  # no byte of either value shows
    assert m.scrub(b"secretsecret") == b"******"
    assert m.scrub(b"abc cde") == b"abc cde"


def test_each_line_of_a_multi_line_value_is_masked():
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAoIBAQC7VJTUt9Us8cKj\n-----END KEY-----\n"
    m = masker(key)
    logged = "log: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nlog: AoIBAQC7VJTUt9Us8cKj\n"
    assert m.scrub(logged) == "log: ***\nlog: ***\n"
    assert m.scrub(key) == "***\n"


def test_json_document_leaves_are_masked_but_not_its_booleans():
    m = masker('{"user": "admin-user", "password": "pw-9f8e7d", "port": 5432, "tls": true}')
    assert m.scrub("pw-9f8e7d admin-user 5432 true") == "*** *** *** true"


def test_numbers_and_booleans_are_masked_by_their_text():
    m = masker(123456, True, 1.5)
    assert m.scrub("id=123456 ok=true r=1.5") == "id=*** ok=*** r=***"


def test_binary_values_are_masked_as_bytes():
    value = b"\xff\xfe\x00binary\x80secret"
    m = masker(value)
    assert m.scrub(b"<" + value + b">") == b"<***>"


def test_short_values_are_counted_not_masked():
    m = masker("x", "", "ok")
    assert m.scrub("x ok") == "x ***"
    assert m.short == 1  # "" is nothing; "x" would mask every x
    assert any("shorter than 2 bytes" in w for w in m.warnings())


def test_long_values_are_masked_in_pieces_and_the_budget_is_bounded():
    long = bytes(range(11, 256)) * 42  # 10 KiB, no newline
    assert [len(p) for p in pieces(long)] == [4096, 4096, 2098]
    m = masker(long)
    assert m.scrub(b"a" + long + b"b") == b"a***b"  # periodic: the pieces overlap
    small = masker(b"A" * 5000, b"B" * 5000, budget=6000)
    assert small.left_out == 4096 and len(small) == 3  # the pieces that fit are kept
    assert any("budget" in w for w in small.warnings())


def test_mask_env_values_shorter_than_two_bytes_are_refused():
    with pytest.raises(ShimError) as err:
        Masker().add("x", "variable V")
    assert err.value.code == errors.EXIT_USAGE and "variable V" in err.value.message()


# -- streaming --------------------------------------------------------------------------
def test_every_split_is_masked_and_the_rest_is_byte_exact():
    m = masker("hunter22", "s3cr3tvalue", "abc", "abcdef")
    data = b"x hunter22 y s3cr3tvalue abcabc abcdef z hunter2 s3cr3t abcde"
    want = b"x *** y *** ****** *** z hunter2 s3cr3t ***de"
    for a in range(len(data) + 1):
        for b in range(a, len(data) + 1):
            assert stream_all(m, data, (a, b))[0] == want, (a, b)


def test_carry_is_only_a_possible_prefix_and_bounded():
    m = masker("abcdef")
    s = m.stream()
    assert s.feed(b"xx abcde") == b"xx "
    assert len(s.carry) == 5
    assert s.feed(b"f yy") == b"*** yy"
    s = m.stream()
    for _ in range(1000):  # a long overlapping run holds nothing beyond the automaton depth
        s.feed(b"abcdefabcdef")
        assert len(s.carry) <= 6


def test_flush_keeps_the_state_so_a_completed_value_is_still_masked():
    s = masker("secret-value").stream()
    assert s.feed(b"see secret") == b"see "
    assert s.flush() == b"secret"  # after --mask-delay output is not held longer...
    assert s.feed(b"-value!") == b"***!"  # ...but the whole value never shows


def test_values_added_while_streaming_are_masked_from_then_on():
    m = masker("first-secret")
    s = m.stream()
    assert s.feed(b"first-secret new-secret fir") == b"*** new-secret "
    m.add_secret("new-secret")  # a --refresh fetched another value
    m.build()
    assert s.feed(b"st-secret new-sec") == b"*** "  # the held "fir" is walked again
    assert s.feed(b"ret") + s.flush() == b"***"


def test_building_asks_stop_and_is_interrupted():
    m = masker(*(f"{i:06d}-value-secret" for i in range(20000)))
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(mask.Interrupted):
        m.build(stop)
    assert len(calls) == 2
    assert m.scrub("000042-value-secret") == "***"  # the values stay registered


def test_work_is_linear_in_the_output():
    m = masker(*(f"value_{i}_secret" for i in range(2000)), "a" * 50 + "b")
    data = (b"value_1 value_12_secre value_123_secret " + b"a" * 200) * 200
    out, s = stream_all(m, data, range(0, len(data), 7))
    assert s.work <= 2 * len(data)
    assert out.count(MASK) == 200


# -- messages and credentials ------------------------------------------------------------
def test_shim_errors_and_log_lines_are_redacted(monkeypatch):
    reg = masker("bearer-token-SECRET-42")
    monkeypatch.setattr(errors, "_redactor", reg.scrub)
    err = ShimError("fetch", "ref+http://x/y", "HTTP 500: auth was Bearer bearer-token-SECRET-42",
                    "check the server")
    assert "SECRET" not in err.message() and "Bearer ***" in err.message()
    out = io.StringIO()
    Log("info", out)("warn", "refresh: saw bearer-token-SECRET-42")
    assert out.getvalue() == "shim: refresh: saw ***\n"


def test_request_headers_register_their_credentials(monkeypatch):
    reg = Masker()
    monkeypatch.setattr(mask, "REGISTRY", reg)
    basic = base64.b64encode(b"user:basic-pass-77").decode()
    base.register_headers({"Authorization": "Bearer tok-abc-123", "X-Vault-Token": "hvs.vault-1",
                           "X-Amz-Security-Token": "session-tok-9", "Accept": "application/json"})
    base.register_headers({"Proxy-Authorization": "Basic " + basic})
    base.register_headers({"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=ab"})
    text = "tok-abc-123 hvs.vault-1 session-tok-9 basic-pass-77 application/json Signature=ab"
    assert reg.scrub(text) == "*** *** *** *** application/json Signature=ab"


def test_context_registers_credential_variables_and_settings(monkeypatch, tmp_path):
    reg = Masker()
    monkeypatch.setattr(mask, "REGISTRY", reg)
    token = tmp_path / "token"
    token.write_text("file-token-55\n")
    ctx = base.Context({"AWS_SECRET_ACCESS_KEY": "aws-secret-key-1", "SHIM_VAULT_ROLE": "role-1"},
                       http=None, settings={"vault_secret_id": "secret-id-7"})
    assert ctx.setting("vault_secret_id") == "secret-id-7"
    assert ctx.setting("vault_role", "SHIM_VAULT_ROLE") == "role-1"  # not a credential
    base.read_secret_file(str(token), "token file")
    assert reg.scrub("aws-secret-key-1 secret-id-7 file-token-55 role-1") == "*** *** *** role-1"


@pytest.mark.parametrize("value,text", [
    ("s", "s"), (b"\xff", b"\xff"), (None, ""), (True, "true"), (False, "false"), (5432, "5432"),
    (base.JsonNumber("1.5e3"), "1.5e3"),
    ({"a": base.JsonNumber("1.5e3"), "b": None, "c": [1, "x"]}, '{"a":1.5e3,"b":null,"c":[1,"x"]}'),
])
def test_json_text_is_one_form_for_every_target(value, text):
    assert base.json_text(value) == text


def test_json_numbers_keep_their_text():
    doc = base.json_loads('{"n": 1.5e3, "i": 10, "big": 123456789012345678901234567890}')
    assert [base.json_text(v) for v in doc.values()] == ["1.5e3", "10",
                                                         "123456789012345678901234567890"]
