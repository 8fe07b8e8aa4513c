"""AWS SSM Parameter Store: one parameter (GetParameters, decrypted) or every parameter under
a path (GetParametersByPath, recursive, decrypted, following NextToken; AWS returns at most
10 per page).

A path reference (`ref+awsssm:///prod/app/`) yields {name relative to the path: value}, so
`/prod/app/db/password` becomes `db/password`; the env-prefix target then normalises that
the way chamber does.

Single parameters of one phase are read together: every `ref+awsssm://` reference of the
same region and role goes into GetParameters calls of 10 names (the API's limit), so 50
parameters cost 5 requests, not 50 -- what keeps a fleet's rollout under SSM's rate limit
(segmentio/chamber#34, "ThrottlingException: Rate exceeded").
"""

from shim.sources.aws.api import call_json, region_for
from shim.sources.base import SourceError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.sources.base import Context
    from shim.sources.refs import Ref

MAX_PAGES = 1000  # a loop guard: 10,000 parameters under one path is already absurd


def fetch(ref: "Ref", ctx: "Context") -> "Any":
    region, role = region_for(ref, ctx.env), ref.query.get("role_arn")
    if ref.is_tree:
        return by_path(ctx, ref.path, region, ref.query.get("recursive", "true") != "false", role)
    batch = ctx.shared(("ssm-batch", region, role), lambda: _batch(ctx, region, role),
                       phase=True)
    name = parameter_name(ref.path)
    if name not in batch:
        batch = _batch(ctx, region, role, [name])  # not known when the phase began
    value = batch.get(name)
    if value is None:
        raise SourceError(f"parameter {ref.path} not found (InvalidParameters)", missing=True)
    return value


def _batch(ctx, region, role, names=None):
    """{name: value, or None for an invalid name} for `names` (default: every single-parameter
    reference of the phase with this region and role), 10 names per GetParameters call."""
    if names is None:
        names = list(dict.fromkeys(
            parameter_name(r.path) for r in ctx.refs
            if r.scheme == "awsssm" and not r.is_tree and r.query.get("role_arn") == role
            and _region_or_none(r, ctx) == region))
    out: dict[str, str | None] = {}
    for i in range(0, len(names), 10):
        chunk = names[i:i + 10]
        data = call_json(ctx, "ssm", "AmazonSSM.GetParameters",
                         {"Names": chunk, "WithDecryption": True}, region, role)
        for param in data.get("Parameters") or []:
            value = param.get("Value")
            if not isinstance(value, str):
                continue
            # Answered under the plain name; `name:3` and ARNs come back with a Selector/ARN.
            selector = param.get("Selector") or ""
            for key in (param.get("Name"), param.get("ARN")):
                if isinstance(key, str):
                    out[key + selector] = value
        for name in chunk:
            out.setdefault(name, None)
    return out


def _region_or_none(ref, ctx):
    try:
        return region_for(ref, ctx.env)
    except SourceError:
        return None


def parameter_name(path: str) -> str:
    """The name to ask for.  An ARN of a hierarchical parameter becomes its name
    (`arn:...:parameter/prod/db` -> `/prod/db`, `:version` kept); AWS accepts ARNs too, but
    emulators do not.  A one-segment ARN stays an ARN: `parameter/x` may name `x` or `/x`."""
    if not path.startswith("arn:"):
        return path
    rest = path.split(":parameter/", 1)[1]
    return "/" + rest if "/" in rest.split(":")[0] else path


def by_path(ctx: "Context", path: str, region: str, recursive: bool = True,
            role_arn: "str | None" = None) -> "dict[str, str]":
    values, token = {}, None
    for _ in range(MAX_PAGES):
        payload = {"Path": path.rstrip("/") or "/", "Recursive": recursive,
                   "WithDecryption": True, "MaxResults": 10}
        if token:
            payload["NextToken"] = token
        data = call_json(ctx, "ssm", "AmazonSSM.GetParametersByPath", payload, region, role_arn)
        for param in data.get("Parameters") or []:
            name, value = param.get("Name"), param.get("Value")
            if isinstance(name, str) and isinstance(value, str):
                values[name[len(path):] if name.startswith(path) else name.lstrip("/")] = value
        token = data.get("NextToken")
        if not token:
            return values
    raise SourceError(f"more than {MAX_PAGES} pages under {path}")
