"""Settings a source reads besides the reference (VAULT_ADDR, AWS endpoints and region):
malformed ones are usage errors (125) before any request; missing ones stay the source's."""

import pytest

from shim.errors import EXIT_USAGE, ShimError
from shim.sources import settings
from shim.sources.fetch import Item, fetch_all
from shim.sources.refs import parse


class NoRequests:
    def request(self, *a, **kw):
        raise AssertionError("a request was sent")


@pytest.mark.parametrize("ref, env, cause", [
    ("ref+vault://kv/a", {"VAULT_ADDR": "http://127.0.0.1:0"}, 'VAULT_ADDR "http://127.0.0.1:0"'),
    ("ref+openbao://kv/a", {"BAO_ADDR": "vault.internal:8200"}, "unsupported URL scheme (none)"),
    ("ref+vault://kv/a", {"SHIM_VAULT_ADDR": "https://[::1", "VAULT_ADDR": "http://ok"},
     "SHIM_VAULT_ADDR"),
    ("ref+awssecrets://db", {"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://h:x"}, 'port "x"'),
    ("ref+s3://b/k", {"AWS_ENDPOINT_URL": "ftp://minio"}, "AWS_ENDPOINT_URL"),
    ("ref+awsssm://p?region=Eu", {}, 'malformed AWS region "Eu"'),
    ("ref+awsssm://p", {"AWS_METADATA_SERVICE_TIMEOUT": "1.5"},
     'AWS_METADATA_SERVICE_TIMEOUT must be a whole number above 0, got "1.5"'),
    ("ref+s3://b/k", {"AWS_METADATA_SERVICE_NUM_ATTEMPTS": "0"}, "NUM_ATTEMPTS must be"),
])
def test_malformed_settings_are_usage_errors_before_any_request(ref, env, cause):
    with pytest.raises(ShimError) as info:
        fetch_all([Item(parse(ref), "env X")], env=env, http=NoRequests())
    assert info.value.code == EXIT_USAGE and cause in info.value.message()
    assert "nothing was fetched" in info.value.message()


@pytest.mark.parametrize("ref, env", [
    ("ref+vault://kv/a", {"VAULT_ADDR": "https://vault.internal:8200"}),
    ("ref+vault://kv/a?address=http://127.0.0.1:1", {"VAULT_ADDR": "bogus"}),  # ?address= wins
    ("ref+awsssm://p", {"AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:1", "AWS_ENDPOINT_URL": "x"}),
    ("ref+vault://kv/a", {}),  # missing: the source says so at fetch time (117)
    ("ref+env://HOME", {"VAULT_ADDR": "bogus"}),
])
def test_good_or_missing_settings_pass(ref, env):
    assert settings.problems([parse(ref)], env) == []
