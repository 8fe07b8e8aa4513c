"""AWS S3 GetObject (optionally `?version_id=`): the object's bytes.

Path-style URLs when AWS_ENDPOINT_URL(_S3) is set (MinIO, moto, VPC endpoints want that),
virtual-hosted style on AWS itself.
"""

from urllib.parse import urlencode

from shim.sources.aws.api import endpoint_for, error_from, region_for, signed_request
from shim.sources.aws.sigv4 import aws_quote

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref


def fetch(ref: "Ref", ctx: "Context") -> bytes:
    bucket, _, key = ref.path.partition("/")
    return get_object(ctx, bucket, key, region_for(ref, ctx.env), ref.query.get("version_id"),
                      ref.query.get("role_arn"))


def get_object(ctx: "Context", bucket: str, key: str, region: str, version_id: "str | None" = None,
               role_arn: "str | None" = None) -> bytes:
    base, custom = endpoint_for("s3", region, ctx.env)
    path = "/" + aws_quote(key, safe="/")
    if custom or "." in bucket:
        url = f"{base}/{aws_quote(bucket)}{path}"
    else:
        scheme, _, host = base.partition("://")
        url = f"{scheme}://{bucket}.{host}{path}"
    if version_id:
        url += "?" + urlencode({"versionId": version_id}, quote_via=lambda s, *a: aws_quote(s))
    resp = signed_request(ctx, "s3", region, "GET", url, [], b"", s3=True, role_arn=role_arn)
    if not resp.ok:
        raise error_from(resp)
    return resp.body
