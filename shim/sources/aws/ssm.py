"""AWS SSM Parameter Store: one parameter (GetParameters, decrypted) or every parameter under
a path (GetParametersByPath, recursive, decrypted, following NextToken; AWS returns at most
10 per page).

A path reference (`ref+awsssm:///prod/app/`) yields {name relative to the path: value}, so
`/prod/app/db/password` becomes `db/password`; the env-prefix target then normalises that
the way chamber does.
"""

from shim.sources.base import SourceError
from shim.sources.aws.api import call_json, region_for

MAX_PAGES = 1000  # a loop guard: 10,000 parameters under one path is already absurd


def fetch(ref, ctx):
    region, role = region_for(ref, ctx.env), ref.query.get("role_arn")
    if ref.is_tree:
        return by_path(ctx, ref.path, region, ref.query.get("recursive", "true") != "false", role)
    data = call_json(ctx, "ssm", "AmazonSSM.GetParameters",
                     {"Names": [parameter_name(ref.path)], "WithDecryption": True}, region, role)
    if data.get("InvalidParameters"):
        raise SourceError(f"parameter {ref.path} not found (InvalidParameters)")
    params = data.get("Parameters") or []
    if len(params) != 1 or not isinstance(params[0].get("Value"), str):
        raise SourceError("GetParameters returned no value")
    return params[0]["Value"]


def parameter_name(path):
    """The name to ask for.  An ARN of a hierarchical parameter becomes its name
    (`arn:...:parameter/prod/db` -> `/prod/db`, `:version` kept); AWS accepts ARNs too, but
    emulators do not.  A one-segment ARN stays an ARN: `parameter/x` may name `x` or `/x`."""
    if not path.startswith("arn:"):
        return path
    rest = path.split(":parameter/", 1)[1]
    return "/" + rest if "/" in rest.split(":")[0] else path


def by_path(ctx, path, region, recursive=True, role_arn=None):
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
