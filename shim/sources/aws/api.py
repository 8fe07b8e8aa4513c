"""Region, endpoint and the signed call shared by the AWS sources.

Region: the reference's `?region=` (or the ARN's), else AWS_REGION, else AWS_DEFAULT_REGION.
Endpoint: AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_SECRETS_MANAGER), else
AWS_ENDPOINT_URL, else the public regional endpoint -- the SDKs' documented order.
"""

import json
import re

from shim.sources.aws import sigv4
from shim.sources.base import SourceError, json_object
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

    from shim.net.http import Response
    from shim.sources.base import Context
    from shim.sources.refs import Ref

# service -> (endpoint prefix, signing name, AWS_ENDPOINT_URL_<id>)
SERVICES = {
    "secretsmanager": ("secretsmanager", "secretsmanager", "SECRETS_MANAGER"),
    "ssm": ("ssm", "ssm", "SSM"),
    "s3": ("s3", "s3", "S3"),
    "sts": ("sts", "sts", "STS"),
}


def region_for(ref: "Ref | None", env: "Mapping[str, str]") -> str:
    region = ref.query.get("region") if ref is not None else None
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise SourceError("no AWS region: add ?region= to the reference or set AWS_REGION")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", region):
        raise SourceError(f"malformed AWS region {show(region)}")
    return region


def endpoint_for(service: str, region: str, env: "Mapping[str, str]") -> "tuple[str, bool]":
    """(base URL without trailing slash, custom) for `service` in `region`."""
    prefix, _, env_id = SERVICES[service]
    url = env.get(f"AWS_ENDPOINT_URL_{env_id}") or env.get("AWS_ENDPOINT_URL")
    if url:
        return url.rstrip("/"), True
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{prefix}.{region}.{suffix}", False


def signed_request(ctx: "Context", service: str, region: str, method: str, url: str,
                   headers: "list[tuple[str, str]]", body: bytes, s3: bool = False,
                   role_arn: "str | None" = None) -> "Response":
    """Sign with the chain's credentials (or those of `role_arn`) and send; the Response."""
    from shim.sources.aws.credentials import assumed, credentials
    creds = assumed(ctx, role_arn, region) if role_arn else credentials(ctx)
    signing_name = SERVICES[service][1]
    signed = sigv4.sign(method, url, headers, body, creds, region, signing_name,
                        now=ctx.now(), s3=s3)
    # http.client sends Host itself from the URL; keep ours (signed) and drop duplicates.
    return ctx.request(method, url, headers=dict(signed.headers), body=body)


def call_json(ctx: "Context", service: str, target: str, payload: "dict[str, Any]", region: str,
              role_arn: "str | None" = None) -> "dict[str, Any]":
    """One JSON-1.1 API call (Secrets Manager, SSM); the decoded response object."""
    base, _ = endpoint_for(service, region, ctx.env)
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target)]
    resp = signed_request(ctx, service, region, "POST", base + "/", headers, body,
                          role_arn=role_arn)
    if not resp.ok:
        raise error_from(resp)
    return json_object(resp.body, service)


def error_from(resp: "Response") -> "SourceError":
    """SourceError from an AWS error response: JSON (__type/message) or XML (Code/Message)."""
    code = message = ""
    try:
        data = json.loads(resp.body)
        if isinstance(data, dict):
            code = str(data.get("__type", "")).rpartition("#")[2]
            message = str(data.get("message") or data.get("Message") or "")
    except ValueError:
        code = xml_field(resp.body, "Code") or ""
        message = xml_field(resp.body, "Message") or ""
    # Only "does not exist" is missing; AccessDenied (S3's answer for an absent key without
    # ListBucket too) is not: ?optional= must never hide a permission problem.
    missing = code in NOT_FOUND_CODES or (resp.status == 404 and not code)
    if not code and not message:
        text = resp.error_text()
        return SourceError(f"HTTP {resp.status}" + (f": {text}" if text else ""), missing=missing)
    detail = ": ".join(p for p in (code, message) if p)
    return SourceError(f"HTTP {resp.status} {detail}", missing=missing)


NOT_FOUND_CODES = ("ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound",
                   "NoSuchKey", "NoSuchVersion")


def xml_field(body: bytes, name: str) -> "str | None":
    """The text of the first <name> element.  AWS XML replies are flat enough for a regex, and
    `re` is loaded anyway: xml.etree.ElementTree would add 9.2 ms of imports and 295 KiB to
    the binary, defusedxml 11.2 ms and 361 KiB, against 5.3 ms and 166 KiB for `re` in a
    fresh interpreter (scripts/bench alternatives; docs/architecture.md)."""
    match = re.search(rf"<{name}>(.*?)</{name}>".encode(), body, re.S)
    return xml_unescape(match.group(1).decode("utf-8", "replace")).strip() if match else ""


_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def xml_unescape(text: str) -> str:
    """XML's five entities and numeric references.  Not xml.sax.saxutils: it imports
    urllib.request (and with it getpass, termios) into the static binary."""
    def one(m: "re.Match[str]") -> str:
        ref = m.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _ENTITIES.get(ref, m.group(0))
    return re.sub(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);", one, text)
