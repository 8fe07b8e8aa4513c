"""AWS credentials in botocore's chain order, without botocore (why: sigv4.py's docstring).

1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN, or the legacy
   AWS_SECURITY_TOKEN)
2. web identity (IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE -> STS
   AssumeRoleWithWebIdentity (unsigned); the token file is re-read every time, because the
   kubelet rotates it
3. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI at 169.254.170.2 (ECS, SageMaker), or
   AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) (EKS Pod
   Identity); FULL_URI must be https, loopback or one of the documented link-local hosts
4. IMDSv2: PUT /latest/api/token, then the role's credentials; AWS_EC2_METADATA_DISABLED
   turns it off, AWS_EC2_METADATA_SERVICE_ENDPOINT moves it (as botocore allows).  It is
   asked only when nothing above is configured, and briefly, as botocore does: 1 s per
   request and 1 attempt (AWS_METADATA_SERVICE_TIMEOUT, AWS_METADATA_SERVICE_NUM_ATTEMPTS),
   so a machine without one loses a second, not a retry ladder.  A half-configured provider
   (an access key without its secret, a token file without a role) is an error, not a
   reason to go on to the metadata service.

The profile-file, SSO and process providers are not implemented: containers get their
credentials from the platform, not from ~/.aws.  AWS_PROFILE (or a shared-file variable) set
with nothing above configured is an error, not a fall-through to the metadata service.
SHIM_AWS_CONTAINER_CREDENTIALS_HOST moves the ECS relative-URI host (169.254.170.2) for
tests, like AWS_EC2_METADATA_SERVICE_ENDPOINT.
"""

import calendar
import ipaddress
import time
from urllib.parse import urlencode, urlsplit

from shim.sources.base import SourceError, http_failure, json_object, read_secret_file
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.net.http import Response
    from shim.sources.base import Context

ECS_HOST = "http://169.254.170.2"
IMDS_ENDPOINT = "http://169.254.169.254/"
FULL_URI_HOSTS = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"}
REFRESH_MARGIN = 300.0  # re-resolve credentials that expire within 5 minutes
METADATA_TIMEOUT = 2.0  # the container endpoint (botocore's ContainerMetadataFetcher: 2 s,
CONTAINER_ATTEMPTS = 3  # 3 attempts)
IMDS_TIMEOUT = 1.0  # botocore's DEFAULT_METADATA_SERVICE_TIMEOUT
IMDS_ATTEMPTS = 1  # botocore's metadata_service_num_attempts default


class Credentials:
    """Access key, secret key, optional session token and expiry (epoch seconds or None)."""

    __slots__ = ("access_key", "secret_key", "token", "expiration", "provider")

    def __init__(self, access_key, secret_key, token=None, expiration=None, provider=""):
        from shim.sources.base import register
        register(secret_key, token)  # masked wherever they could appear
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token or None
        self.expiration = expiration
        self.provider = provider

    def __repr__(self) -> str:  # never the secret
        return f"Credentials({self.provider}, {self.access_key[:4]}...)"

    def fresh(self, now: float) -> bool:
        return self.expiration is None or self.expiration - now > REFRESH_MARGIN


def credentials(ctx: "Context") -> "Credentials":
    """The phase's credentials, resolved once and re-resolved when near expiry."""
    return _cached(ctx, "aws-credentials", lambda: resolve(ctx))


def assumed(ctx: "Context", role_arn: str, region: str) -> "Credentials":
    """Credentials of `role_arn` (`?role_arn=` on a reference): STS AssumeRole signed with the
    chain's credentials, cached per role and renewed near expiry, like vals' role_arn."""
    return _cached(ctx, ("aws-role", role_arn), lambda: assume_role(ctx, role_arn, region))


def _cached(ctx, key, factory):
    made = []
    # append's None lets `or` call the factory: `made` records that this call made it
    creds = ctx.shared(key, lambda: made.append(1) or factory())  # type: ignore[func-returns-value]
    if not made and not creds.fresh(ctx.now()):  # kept from before (a refresh) and due
        ctx.forget(key)
        creds = ctx.shared(key, factory)
    return creds


# What selects a provider shim does not implement (botocore's shared-file, SSO and process
# providers): set, it means "not the metadata service", so the chain stops with an error.
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                     "AWS_CONFIG_FILE")


def resolve(ctx: "Context") -> "Credentials":
    """Walk the chain; SourceError naming what was tried when nothing supplies credentials."""
    for provider in (from_env, from_web_identity, from_container, _no_profiles, from_imds):
        creds = provider(ctx)
        if creds is not None:
            return creds
    imds = ("the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED)"
            if _imds_disabled(ctx.env) else "the instance metadata service had none")
    raise SourceError("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                      "AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, or "
                      f"AWS_CONTAINER_CREDENTIALS_*; {imds}")


def from_env(ctx: "Context") -> "Credentials | None":
    env = ctx.env
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if bool(access) != bool(secret):  # botocore's PartialCredentialsError
        have, lack = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if access else
                      ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"))
        raise SourceError(f"partial AWS credentials: {have} is set but {lack} is not; set "
                          "both, or neither to use a role")
    if not access:
        return None
    token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN")
    expiry = env.get("AWS_CREDENTIAL_EXPIRATION")
    return Credentials(access, secret, token, _parse_time(expiry) if expiry else None, "env")


def from_web_identity(ctx: "Context") -> "Credentials | None":
    env = ctx.env
    role, token_file = env.get("AWS_ROLE_ARN"), env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    if token_file and not role:  # botocore: "configured to assume role with web identity but
        raise SourceError("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set "
                          "the role to assume with the token")  # has no role ARN configured"
    if not role or not token_file:
        return None
    token = read_secret_file(token_file, "web identity token file")
    session = env.get("AWS_ROLE_SESSION_NAME") or f"shim-{int(ctx.now())}"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    # AssumeRoleWithWebIdentity is unsigned (authtype none): the token is the credential.
    return _sts(ctx, region, {"Action": "AssumeRoleWithWebIdentity", "RoleArn": role,
                              "RoleSessionName": session, "WebIdentityToken": token},
                None, "web-identity")


def assume_role(ctx: "Context", role_arn: str, region: str) -> "Credentials":
    session = ctx.env.get("AWS_ROLE_SESSION_NAME") or f"shim-{int(ctx.now())}"
    return _sts(ctx, region, {"Action": "AssumeRole", "RoleArn": role_arn,
                              "RoleSessionName": session}, credentials(ctx), "assume-role")


def _sts(ctx, region, params, signer, provider):
    """One STS call (query protocol) returning Credentials; signed when `signer` is given."""
    from shim.sources.aws.api import endpoint_for, error_from, xml_field
    env = ctx.env
    if region:
        base, _ = endpoint_for("sts", region, env)
    else:
        base = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or \
            "https://sts.amazonaws.com"
    url = base.rstrip("/") + "/"
    body = urlencode(dict(params, Version="2011-06-15")).encode()
    headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    if signer is not None:
        from shim.sources.aws import sigv4
        headers = sigv4.sign("POST", url, headers, body, signer, region or "us-east-1", "sts",
                             now=ctx.now()).headers
    resp = ctx.request("POST", url, headers=dict(headers), body=body)
    what = f"STS {params['Action']} for {params['RoleArn']}"
    if not resp.ok:
        raise SourceError(f"{what}: {error_from(resp).cause}")
    fields = {k: xml_field(resp.body, k) for k in
              ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}
    if not fields["AccessKeyId"] or not fields["SecretAccessKey"]:
        raise SourceError(f"{what} returned no credentials")
    return Credentials(fields["AccessKeyId"], fields["SecretAccessKey"], fields["SessionToken"],
                       _parse_time(fields["Expiration"]), provider)


def from_container(ctx: "Context") -> "Credentials | None":
    env = ctx.env
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    headers = {}
    if relative:
        host = env.get("SHIM_AWS_CONTAINER_CREDENTIALS_HOST") or ECS_HOST
        url = host.rstrip("/") + "/" + relative.lstrip("/")
    elif full:
        _check_full_uri(full)
        url = full
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        token = (read_secret_file(token_file, "container authorization token file", True)
                 if token_file else env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
        if token:
            if "\r" in token or "\n" in token:
                raise SourceError("container authorization token contains a line break")
            headers["Authorization"] = token
    else:
        return None
    from shim.net.http import Retry
    resp = ctx.request("GET", url, headers=headers, timeout=METADATA_TIMEOUT,
                       retry=Retry(attempts=CONTAINER_ATTEMPTS, base=0.5, cap=1.0))
    if not resp.ok:
        raise http_failure(resp, "from the container credentials endpoint")
    data = json_object(resp.body, "container credentials endpoint")
    return _from_json(data, "container")


def _no_profiles(ctx):
    """A profile setting the chain cannot honour is an error, not a silent IMDS probe."""
    named = [name for name in PROFILE_VARIABLES if ctx.env.get(name)]
    if named:
        raise SourceError(f"{named[0]} is set, but shim does not read AWS profile files; give "
                          "the credentials as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web "
                          f"identity or container credentials (or unset {named[0]})")
    return None


def from_imds(ctx: "Context") -> "Credentials | None":
    env = ctx.env
    if _imds_disabled(env):
        return None
    base = (env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_ENDPOINT).rstrip("/")
    timeout, attempts = _imds_limits(env)
    from shim.net.http import HttpError, Retry
    retry = Retry(attempts=attempts, base=0.1, cap=1.0)

    def ask(method: str, url: str, headers: "dict[str, str]") -> "Response | None":
        try:
            return ctx.http.request(method, url, headers=headers, timeout=timeout, retry=retry,
                                    deadline=ctx.deadline)
        except HttpError:
            return None  # no metadata service here (or it stopped answering): the chain ends

    resp = ask("PUT", base + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21600"})
    if resp is None:
        return None
    headers = {}
    if resp.ok:
        headers["x-aws-ec2-metadata-token"] = resp.text().strip()
    elif resp.status in (403, 404, 405) and \
            env.get("AWS_EC2_METADATA_V1_DISABLED", "").lower() != "true":
        pass  # IMDSv1 fallback, as botocore does
    else:
        return None
    path = base + "/latest/meta-data/iam/security-credentials/"
    roles = ask("GET", path, headers)
    if roles is None or not roles.ok:
        return None
    role = roles.text().strip().splitlines()[0] if roles.text().strip() else ""
    if not role:
        return None
    resp = ask("GET", path + role, headers)
    if resp is None:
        return None
    if not resp.ok:
        raise http_failure(resp, f"from IMDS for role {role}")
    return _from_json(json_object(resp.body, "IMDS"), "imds")


def _imds_disabled(env):
    return env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true"


def _imds_limits(env):
    """(timeout seconds, attempts) per request, botocore's way: 1 and 1 unless
    AWS_METADATA_SERVICE_TIMEOUT / AWS_METADATA_SERVICE_NUM_ATTEMPTS say otherwise."""
    out = []
    for name, default in (("AWS_METADATA_SERVICE_TIMEOUT", IMDS_TIMEOUT),
                          ("AWS_METADATA_SERVICE_NUM_ATTEMPTS", IMDS_ATTEMPTS)):
        text = env.get(name, "").strip()
        if not text:
            out.append(default)
        elif text.isascii() and text.isdigit() and int(text) > 0:
            out.append(type(default)(int(text)))
        else:
            raise SourceError(f"{name} must be a whole number above 0, got {show(text)}")
    return out[0], out[1]


# -- helpers -----------------------------------------------------------------------
def _check_full_uri(url):
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = (parts.hostname or "").lower()
    loopback = False
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parts.scheme != "http" or not (loopback or host in FULL_URI_HOSTS):
        raise SourceError(f"AWS_CONTAINER_CREDENTIALS_FULL_URI host {show(host)} is not allowed: "
                          "use https, a loopback address or the EKS/ECS link-local endpoint")


def _from_json(data, provider):
    access, secret = data.get("AccessKeyId"), data.get("SecretAccessKey")
    if not access or not secret:
        raise SourceError(f"{provider} credentials response lacks AccessKeyId/SecretAccessKey")
    expiry = data.get("Expiration")
    return Credentials(access, secret, data.get("Token"),
                       _parse_time(expiry) if expiry else None, provider)


def _parse_time(text):
    """ISO 8601 UTC ('2026-11-21T10:00:00Z', fractions and +00:00 allowed) -> epoch."""
    text = text.strip().replace("+00:00", "Z")
    if "." in text:
        text = text.split(".")[0] + "Z"
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
