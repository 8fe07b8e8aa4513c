"""AWS Secrets Manager GetSecretValue: SecretString as text, SecretBinary as bytes.

`?version_stage=` and `?version_id=` select a version (ARN suffixes set them too);
`?role_arn=` reads it as that role (STS AssumeRole).
"""

import base64

from shim.sources.aws.api import call_json, region_for
from shim.sources.base import SourceError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref


def fetch(ref: "Ref", ctx: "Context") -> "str | bytes":
    payload = {"SecretId": ref.path}
    if ref.query.get("version_id"):
        payload["VersionId"] = ref.query["version_id"]
    if ref.query.get("version_stage"):
        payload["VersionStage"] = ref.query["version_stage"]
    data = call_json(ctx, "secretsmanager", "secretsmanager.GetSecretValue", payload,
                     region_for(ref, ctx.env), ref.query.get("role_arn"))
    if isinstance(data.get("SecretString"), str):
        return data["SecretString"]
    if isinstance(data.get("SecretBinary"), str):
        try:
            return base64.b64decode(data["SecretBinary"], validate=True)
        except ValueError:
            raise SourceError("SecretBinary is not base64") from None
    raise SourceError("GetSecretValue returned neither SecretString nor SecretBinary")
