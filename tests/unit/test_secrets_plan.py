"""Planning and shaping of secret targets (shim.run.secrets) without any network: references
from flags, items and the environment; bad input; values into variables and files."""

import json

import pytest

from shim.config import options
from shim.errors import ShimError
from shim.run import hygiene, secrets
from shim.run.pipeline import wants_secrets
from shim.sources.fetch import Result


def cfg(argv=(), environ=None, doc=None, tmp_path=None):
    environ = dict(environ or {})
    if doc is not None:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(doc))
        argv = ["--config", str(path), *argv]
    return options.resolve(list(argv) + ["--", "true"], environ)


def test_wants_secrets_is_cheap_and_exact():
    assert not wants_secrets(cfg(), {"A": "x", "SHIM_ENV_FROM": "ref+x"})
    assert wants_secrets(cfg(), {"A": "ref+vault://a/b"})
    assert not wants_secrets(cfg(["--no-env-refs"]), {"A": "ref+vault://a/b"})
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/x"
    assert not wants_secrets(cfg(), {"A": arn})
    assert wants_secrets(cfg(["--env-refs", "all"]), {"A": arn})
    assert wants_secrets(cfg(["--secret", "X=ref+env://A"]), {})


def test_plan_from_flags_items_and_environment(tmp_path):
    c = cfg(["--secret", "A=ref+env://X", "--secret-file", "/run/s/f=ref+file:///x"],
            doc={"secrets": [{"ref": "ref+vault://s/a", "dir": "/run/d", "mode": "0440",
                              "owner": "10:20"},
                             {"ref": "ref+env://Y", "env": "B", "optional": True,
                              "default": "d"}]}, tmp_path=tmp_path)
    targets = secrets.plan(c, {"C": "ref+vault://s/c#/k", "SHIM_X": "ref+env://Q"})
    got = [(t.kind, t.dest, t.item.ref.raw) for t in targets]
    assert got == [("env", "A", "ref+env://X"), ("file", "/run/s/f", "ref+file:///x"),
                   ("dir", "/run/d", "ref+vault://s/a"), ("env", "B", "ref+env://Y"),
                   ("env", "C", "ref+vault://s/c#/k")]
    d = targets[2]
    assert (d.mode, d.uid, d.gid) == (0o440, 10, 20)
    assert targets[3].item.optional and targets[3].item.default == "d"
    assert targets[0].where == "--secret A" and targets[2].where == "$.secrets.items[0]"


@pytest.mark.parametrize("item,cause", [
    ({"ref": "ref+env://X"}, "exactly one of"),
    ({"ref": "ref+env://X", "env": "A", "file": "/f"}, "exactly one of"),
    ({"ref": "ref+env://X", "env": "1A"}, "invalid variable name"),
    ({"ref": "ref+nope://X", "env": "A"}, "unknown scheme"),
    ({"ref": "ref+env://X", "file": "/f", "mode": "999"}, "octal mode"),
    ({"ref": "ref+env://X", "file": "/f", "owner": "root"}, "UID"),
    ({"ref": "ref+env://X", "env": "A", "colour": 1}, "unknown key"),
    ({"ref": "ref+env://X", "env": "A", "default": 3}, "expected a string"),
    ({"ref": "ref+env://X", "env_from": "yes"}, "expected true"),
])
def test_bad_items(item, cause, tmp_path):
    c = cfg(doc={"secrets": [item]}, tmp_path=tmp_path)
    with pytest.raises(ShimError) as info:
        secrets.plan(c, {})
    assert cause in str(info.value) and info.value.code == 125


def test_duplicate_targets():
    c = cfg(["--secret", "A=ref+env://X"])
    with pytest.raises(ShimError, match="same env target as --secret A"):
        secrets.plan(c, {"A": "ref+env://Y"})


def pairs_for(c, values, env=None):
    targets = secrets.plan(c, env or {})
    return [(t, Result(t.item, v)) for t, v in zip(targets, values, strict=False)]


def test_variables_shapes_and_chamber_names():
    c = cfg(["--secret", "A=ref+env://X", "--secret-env-prefix", "DB_=ref+env://Y",
             "--env-from", "ref+env://Z"])
    pairs = pairs_for(c, [b"bytes-ok", {"user-name": "u", "nested/port": 5432, "flag": True},
                          "K1=v1\nexport K2='v 2'\n"])
    assert secrets.variables(pairs) == {"A": "bytes-ok", "DB_USER_NAME": "u",
                                        "DB_NESTED_PORT": "5432", "DB_FLAG": "true",
                                        "K1": "v1", "K2": "v 2"}


def test_variables_errors_name_the_reference_not_the_value():
    c = cfg(["--secret", "A=ref+env://X"])
    with pytest.raises(ShimError) as info:
        secrets.variables(pairs_for(c, [b"\xff\xfesecret"]))
    assert "binary" in str(info.value) and "secret" not in info.value.cause.replace(
        "--secret-file", "")
    c = cfg(["--secret-env-prefix", "P_=ref+env://Y"])
    with pytest.raises(ShimError, match="expected a JSON object"):
        secrets.variables(pairs_for(c, ["just text"]))
    c = cfg(["--secret-env-prefix", "P_=ref+env://Y", "--env-from", "ref+env://Z"])
    with pytest.raises(ShimError, match="variable P_A: set by both"):
        secrets.variables(pairs_for(c, [{"a": "1"}, {"P_A": "2"}]))


def test_optional_miss_sets_nothing():
    c = cfg(["--secret", "A=ref+env://X"])
    assert secrets.variables(pairs_for(c, [None])) == {}


def test_file_bytes():
    assert secrets.file_bytes("é") == "é".encode()
    assert secrets.file_bytes(b"\x00\xff") == b"\x00\xff"
    assert secrets.file_bytes({"a": 1}) == b'{"a":1}'


def test_hygiene():
    env = {"SHIM_VAULT_TOKEN": "t", "SHIM_HTTP_TOKEN_FILE": "/f", "SHIM_AWS_X": "1",
           "VAULT_TOKEN": "v", "AWS_SECRET_ACCESS_KEY": "k", "KEEP": "1", "SHIM_LOG_LEVEL": "x"}
    hygiene.scrub(env, cfg())
    assert env == {"VAULT_TOKEN": "v", "AWS_SECRET_ACCESS_KEY": "k", "KEEP": "1",
                   "SHIM_LOG_LEVEL": "x"}
    hygiene.scrub(env, cfg(["--scrub-credentials", "--scrub-env", "KEEP"]))
    assert env == {"SHIM_LOG_LEVEL": "x"}


def test_shim_check_parses_references(tmp_path, capfd):
    from shim.commands import check
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"secrets": [{"ref": "ref+vault://s/a#/x~2", "env": "A"}]}))
    assert check.main(["--config", str(path)], {}) == 125
    assert "$.secrets.items[0]: malformed reference" in capfd.readouterr().err
    path.write_text(json.dumps({"secrets": {"env": {"A": "ref+vault://s/a#/x"},
                                            "deadline": "5s"}}))
    assert check.main(["--config", str(path)], {}) == 0


def test_json_where_text_was_expected():
    c = cfg(["--secret", "A=ref+vault://s/a"])
    with pytest.raises(ShimError) as info:
        secrets.variables(pairs_for(c, [{"user": "u", "password": "pw-Secret1"}]))
    err = info.value
    assert err.code == 117 and "a variable takes text" in err.cause and "#/KEY" in err.cause
    assert "pw-Secret1" not in err.message()
    # text that happens to be JSON is text: passed through as it is
    assert secrets.variables(pairs_for(c, ['{"a": 1}'])) == {"A": '{"a": 1}'}
    assert secrets.variables(pairs_for(c, [5432])) == {"A": "5432"}
