"""The settings a source reads besides the reference, checked before any request.

A malformed reference is a usage error (exit 125) before anything is fetched; so is a
malformed setting the reference depends on: a VAULT_ADDR (or `?address=`) that is no
http(s) URL, an AWS endpoint URL or region that cannot be one, a metadata-service timeout
or attempt count that is not a number.  A *missing* setting is
still the source's own failure (exit 117, "no Vault address"): it may come from a platform
that is not there yet.

    problems(refs, env) -> [ShimError]   # what `shim check` lists
    check(refs, env)                     # the run: raises the first

Only the schemes below have settings to check; nothing is imported for the others.
"""


from shim.errors import REASON_USAGE, ShimError
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

    from shim.sources.refs import Ref

_AWS = ("awssecrets", "awsssm", "s3")


def problems(refs: "list[Ref]", env: "Mapping[str, str]") -> "list[ShimError]":
    """[ShimError] for every reference whose source settings are malformed (one per cause)."""
    found, seen = [], set()
    for ref in refs:
        checker = _CHECKERS.get(ref.scheme)
        cause = checker(ref, env) if checker is not None else None
        if cause is not None and cause not in seen:
            seen.add(cause)
            found.append(ShimError("fetch", f"{ref.display()} ({ref.source})",
                                   cause, "fix the setting; nothing was fetched",
                                   reason=REASON_USAGE))
    return found


def check(refs: "list[Ref]", env: "Mapping[str, str]") -> None:
    found = problems(refs, env)
    if found:
        raise found[0]


def _url_cause(name, value):
    from shim.net.url import URLError, parse, redacted
    try:
        parse(value)
    except URLError as err:
        return f"{name} {show(redacted(value))} is not a usable URL: {err}"
    return None


def _vault(ref, env):
    if ref.query.get("address"):
        return None  # checked with the reference itself (refs.parse)
    for name in ("SHIM_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR"):
        if env.get(name):
            return _url_cause(name, env[name])
    return None


def _aws(ref, env):
    from shim.sources.aws.api import SERVICES
    service = {"awssecrets": "secretsmanager", "awsssm": "ssm", "s3": "s3"}[ref.scheme]
    for name in (f"AWS_ENDPOINT_URL_{SERVICES[service][2]}", "AWS_ENDPOINT_URL"):
        if env.get(name):
            cause = _url_cause(name, env[name])
            if cause:
                return cause
            break  # the first one set is the one used
    for name in ("AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS"):
        text = env.get(name, "").strip()  # botocore's: read by the credential chain
        if text and not (text.isascii() and text.isdigit() and int(text) > 0):
            return f"{name} must be a whole number above 0, got {show(text)}"
    region = ref.query.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region and not _region(region):
        return f"malformed AWS region {show(region)} (like eu-west-1)"
    return None


def _region(text):
    """[a-z0-9-]{1,40}, without `re` (a local-reference start never imports it)."""
    return 1 <= len(text) <= 40 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in text)


_CHECKERS = {"vault": _vault, "openbao": _vault, **{scheme: _aws for scheme in _AWS}}
