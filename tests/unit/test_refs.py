"""The ref+ parser: a table of what vals and secrets-init users write, then fuzzing."""

import os

import pytest
from hypothesis import example, given, settings, strategies as st

from shim.sources import refs
from shim.sources.refs import RefError, parse

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))  # `scripts/test explore` raises it


@pytest.mark.parametrize("text,scheme,path,query,pointer", [
    ("ref+vault://secret/app#/password", "vault", "secret/app", {}, ("password",)),
    ("ref+vault://secret/app?address=https://v:8200&namespace=team#/a/b", "vault",
     "secret/app", {"address": "https://v:8200", "namespace": "team"}, ("a", "b")),
    ("ref+vault://database/creds/ro", "vault", "database/creds/ro", {}, None),
    ("ref+awssecrets://prod/db#/password", "awssecrets", "prod/db", {}, ("password",)),
    ("ref+awssecrets://prod/db?version_stage=AWSPREVIOUS&region=eu-west-1", "awssecrets",
     "prod/db", {"version_stage": "AWSPREVIOUS", "region": "eu-west-1"}, None),
    ("ref+awssecrets://prod/db?version_id=v1", "awssecrets", "prod/db", {"version_id": "v1"},
     None),
    ("ref+awsssm://prod/app/api-key", "awsssm", "/prod/app/api-key", {}, None),
    ("ref+awsssm:///prod/app/", "awsssm", "/prod/app/", {}, None),
    ("ref+s3://bucket/dir/key.json#/a/b", "s3", "bucket/dir/key.json", {}, ("a", "b")),
    ("ref+https://config.internal/v1/app.json?env=prod#/feature", "https",
     "https://config.internal/v1/app.json?env=prod", {}, ("feature",)),
    ("ref+http://127.0.0.1:8080/x", "http", "http://127.0.0.1:8080/x", {}, None),
    ("ref+file:///etc/x.json#/k", "file", "/etc/x.json", {}, ("k",)),
    ("ref+file://relative/x.env", "file", "relative/x.env", {}, None),
    ("ref+env://HOME", "env", "HOME", {}, None),
    ("ref+vault://secret/app#/a~1b/c~0d", "vault", "secret/app", {}, ("a/b", "c~d")),
    ("ref+vault://secret/app#/with%20space", "vault", "secret/app", {}, ("with space",)),
    ("ref+vault://secret/app#password", "vault", "secret/app", {}, ("password",)),
    ("ref+vault://secret/app#/", "vault", "secret/app", {}, ("",)),
    ("ref+vault://secret/app#/list/0", "vault", "secret/app", {}, ("list", "0")),
])
def test_parse_table(text, scheme, path, query, pointer):
    ref = parse(text)
    assert (ref.scheme, ref.path, ref.query, ref.pointer) == (scheme, path, query, pointer)
    assert refs.is_ref(text)


def test_trailing_slash_is_a_tree():
    assert parse("ref+awsssm:///prod/app/").is_tree
    assert not parse("ref+awsssm:///prod/app/key").is_tree


def test_secretsmanager_arn():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
    ref = parse(arn)
    assert (ref.scheme, ref.path, ref.query, ref.pointer) == (
        "awssecrets", arn, {"region": "eu-west-1"}, None)
    ref = parse(arn + ":password:AWSPREVIOUS:")
    assert ref.path == arn and ref.pointer == ("password",)
    assert ref.query == {"region": "eu-west-1", "version_stage": "AWSPREVIOUS"}
    assert parse(arn + "#/password").pointer == ("password",)
    assert refs.is_ref(arn)


def test_ssm_arn():
    arn = "arn:aws:ssm:us-east-2:123456789012:parameter/prod/app/key"
    ref = parse(arn)
    assert (ref.scheme, ref.path, ref.region) == ("awsssm", arn, "us-east-2")
    assert parse(arn + ":3").path == arn + ":3"
    assert parse("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x").region == "cn-north-1"


@pytest.mark.parametrize("text,cause", [
    ("", "empty"),
    ("vault://secret/app", "not a reference"),
    ("ref+vault:secret", "missing '://'"),
    ("ref+gcpsecretz://p/s", 'unknown scheme "gcpsecretz"'),
    ("ref+vault://", "Vault path"),
    ("ref+vault://secret/app?regoin=x", 'unknown query parameter "regoin"'),
    ("ref+awsssm:///", "parameter"),
    ("ref+s3://bucket", "BUCKET/KEY"),
    ("ref+env://1BAD", "variable name"),
    ("ref+https:///path", "missing host"),
    ("ref+vault://secret/app#/a~2", "escape"),
    ("arn:aws:iam::123456789012:role/x", "unsupported ARN"),
    ("ref+vault://secret/app\n", "line break"),
    # URLs are read as the client reads them: before any request, never port 80 for :0
    ("ref+http://127.0.0.1:0/x", "malformed URL: port 0 is out of range; use 1 to 65535"),
    ("ref+https://h:99999/x", "malformed URL: port 99999 is out of range"),
    ("ref+https://h:x/x", 'malformed URL: port "x" is not a number'),
    ("ref+https://[::1", "malformed URL: the host's '[' has no closing ']'"),
    ("ref+https://[::1/x#/k", "no closing ']'"),
    ("ref+vault://kv/a?address=http://v:0", "malformed ?address=: port 0 is out of range"),
    ("ref+vault://kv/a?address=ftp://v", "malformed ?address=: unsupported URL scheme"),
    ("ref+vault://kv/a?version=abc", '?version= must be a whole number (a KV v2 version), got "abc"'),
    ("ref+vault://kv/a?version=-1", "?version= must be a whole number"),
    ("ref+awsssm:///app/?recursive=yes", '?recursive= takes true or false, got "yes"'),
    ("ref+vault://secret/app#/password#/x", "a second '#' in the fragment #/password#/x"),
    ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db#/a#b", "a second '#'"),
])
def test_malformed(text, cause):
    with pytest.raises(RefError, match=None) as info:
        parse(text)
    assert cause in str(info.value)


def test_good_versions_and_escaped_hash():
    assert parse("ref+vault://kv/a?version=3").query == {"version": "3"}
    assert parse("ref+vault://kv/a#/pass%23word").pointer == ("pass#word",)
    assert parse("ref+https://h:443/x").path == "https://h:443/x"


def test_display_hides_url_credentials():
    ref = parse("ref+https://user:pw@config/x?token=abc#/k")
    assert ref.display() == "ref+https://config/x"
    assert "abc" not in repr(ref)


def test_select():
    doc = {"a": {"b/c": [10, {"d": "x"}]}}
    assert refs.select(doc, ("a", "b/c", "1", "d")) == "x"
    with pytest.raises(KeyError, match="/a/nope"):
        refs.select(doc, ("a", "nope", "z"))
    with pytest.raises(KeyError):
        refs.select(doc, ("a", "b/c", "01"))  # no leading zeros (RFC 6901)
    with pytest.raises(KeyError):
        refs.select(doc, ("a", "b/c", "5"))


@settings(max_examples=400 * SCALE, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_parse_raises_only_referror(text):
    try:
        ref = parse(text)
    except RefError as err:
        assert "\n" not in str(err)
    else:
        assert ref.scheme in refs.SCHEMES
        assert ref.display()


@settings(max_examples=400 * SCALE, deadline=None)
@given(st.sampled_from(["ref+vault://", "ref+awsssm://", "ref+s3://b/", "ref+https://h/",
                        "ref+file://", "ref+awssecrets://", "arn:aws:ssm:us-east-1:123456789012:"
                        "parameter/", "ref+env://"]),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_fuzz_scheme_prefixes(prefix, tail):
    try:
        parse(prefix + tail)
    except RefError:
        pass


@example(["a/b", "~"])  # RFC 6901 escapes: / as ~1, ~ as ~0
@example(["~1", "~0/"])
@example(["", ""])
@example([])
@given(st.lists(st.text(max_size=10), max_size=5))
def test_pointer_round_trip(tokens):
    tokens = tuple(tokens)
    if tokens == ("",):
        return  # "/" is the one-empty-key pointer, also a round trip, tested above
    text = refs.format_pointer(tokens)
    if not tokens:  # the whole document: a reference without a fragment (pointer None)
        assert text == "" and parse("ref+vault://kv/a").pointer is None
        return
    assert refs.parse_pointer(text) == tokens


def test_a_fragment_that_selects_nothing_is_shown_whole():
    from shim.sources.base import SourceError
    from shim.sources.fetch import pick
    doc = b'{"password": {"a": 1}, "list": [1]}'
    for fragment, cause in [
        ("/nope", "fragment #/nope selects nothing"),
        ("/password/x/y", "fragment #/password/x/y selects nothing (there is no #/password/x)"),
        ("/list/3", "fragment #/list/3 selects nothing"),
        ("/a~1b/c", "fragment #/a~1b/c selects nothing (there is no #/a~1b)"),
    ]:
        with pytest.raises(SourceError) as info:
            pick(doc, refs.parse_pointer(fragment))
        assert info.value.cause == cause
