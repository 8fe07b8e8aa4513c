"""AWS sources against moto in server mode WITH signature checking (a wrong key gets 403),
plus loopback stubs for the ECS and EKS Pod Identity credential endpoints, which moto lacks."""

import json

import pytest
import servers
from helpers import fetch

from shim.errors import ShimError
from shim.net.http import Client
from shim.sources.aws import credentials as awscreds
from shim.sources.base import Context


@pytest.fixture(scope="module")
def data(moto):
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="prod/db", SecretString=json.dumps({"password": "sm-pass-Qw3",
                                                              "user": "db"}))
    sm.put_secret_value(SecretId="prod/db", SecretString=json.dumps({"password": "sm-pass-NEW"}))
    sm.create_secret(Name="prod/cert", SecretBinary=b"\x00\x01binary\xff")
    arn = sm.describe_secret(SecretId="prod/db")["ARN"]
    ssm = moto.client("ssm")
    for i in range(15):
        ssm.put_parameter(Name=f"/prod/app/key-{i:02d}", Value=f"v{i:02d}", Type="SecureString")
    ssm.put_parameter(Name="/prod/app/nested/db-url", Value="postgres://x", Type="String")
    ssm.put_parameter(Name="/prod/other", Value="not-under-app", Type="String")
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="app/config.json", Body=b'{"a": {"b": "from-s3"}}')
    iam = moto.client("iam")
    iam.create_role(RoleName="irsa", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                "Principal": {"Federated": "*"}}]}))
    iam.put_role_policy(RoleName="irsa", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    return {"sm_arn": arn, "role_arn": iam.get_role(RoleName="irsa")["Role"]["Arn"]}


def test_secrets_manager_current_previous_binary_and_arn(moto, data):
    arn = data["sm_arn"]
    refs = ["ref+awssecrets://prod/db#/password",
            "ref+awssecrets://prod/db?version_stage=AWSPREVIOUS#/password",
            "ref+awssecrets://prod/cert", arn + "#/password", arn + ":user:AWSPREVIOUS:"]
    got = fetch(refs, moto.env())
    assert got[refs[0]] == "sm-pass-NEW"
    assert got[refs[1]] == "sm-pass-Qw3"
    assert got[refs[2]] == b"\x00\x01binary\xff"
    assert got[refs[3]] == "sm-pass-NEW"
    assert got[refs[4]] == "db"


def test_ssm_parameter_and_path_with_pagination(moto, data):
    refs = ["ref+awsssm://prod/app/key-03", "ref+awsssm:///prod/app/",
            "arn:aws:ssm:us-east-1:123456789012:parameter/prod/other"]
    got = fetch(refs, moto.env())
    assert got[refs[0]] == "v03"
    tree = got[refs[1]]
    assert len(tree) == 16  # 15 + nested: more than one page of 10
    assert tree["key-14"] == "v14" and tree["nested/db-url"] == "postgres://x"
    assert got[refs[2]] == "not-under-app"


def test_s3_object_with_pointer(moto, data):
    got = fetch(["ref+s3://cfg/app/config.json#/a/b", "ref+s3://cfg/app/config.json"],
                moto.env())
    assert got["ref+s3://cfg/app/config.json#/a/b"] == "from-s3"
    assert got["ref+s3://cfg/app/config.json"] == b'{"a": {"b": "from-s3"}}'


def test_signature_checking_is_on(moto, data):
    """A wrong secret key fails with moto's 403 and the error text in one line."""
    with pytest.raises(ShimError) as info:
        fetch(["ref+awsssm://prod/app/key-01"], moto.env(AWS_SECRET_ACCESS_KEY="wrong" * 8))
    msg = info.value.message()
    assert info.value.code == 117
    assert "ref+awsssm://prod/app/key-01 (aws-ssm" in msg and "HTTP 403" in msg
    assert "Signature" in msg or "signature" in msg


def test_not_found_names_the_reference(moto, data):
    with pytest.raises(ShimError) as info:
        fetch(["ref+awssecrets://prod/none"], moto.env())
    assert "ResourceNotFoundException: Secrets Manager can" in info.value.message()


def test_endpoint_per_service_wins(moto, data):
    env = moto.env(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ENDPOINT_URL_SSM=moto.url)
    assert fetch(["ref+awsssm://prod/other"], env)["ref+awsssm://prod/other"] == "not-under-app"


def test_region_from_ref_and_missing_region(moto, data):
    env = moto.env()
    del env["AWS_REGION"]
    with pytest.raises(ShimError, match="no AWS region"):
        fetch(["ref+awsssm://prod/other"], env)
    got = fetch(["ref+awsssm://prod/other?region=us-east-1"], env)
    assert got["ref+awsssm://prod/other?region=us-east-1"] == "not-under-app"


def sts_stub(moto, seen):
    """STS stand-in: moto with signature checking on answers the UNSIGNED
    AssumeRoleWithWebIdentity with a 500 (it reads the Authorization header unconditionally),
    so the end-to-end IRSA test gets its credentials from this loopback stub, which hands out
    the moto IAM user's key so the following SSM call passes moto's signature check."""
    from urllib.parse import parse_qs

    def handler(req):
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        seen.append(form)
        assert "Authorization" not in req.headers  # unsigned, as the API defines it
        xml = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
               f"<Credentials><AccessKeyId>{moto.key_id}</AccessKeyId>"
               f"<SecretAccessKey>{moto.secret}</SecretAccessKey>"
               "<SessionToken></SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
               "</Credentials></AssumeRoleWithWebIdentityResult>"
               "</AssumeRoleWithWebIdentityResponse>")
        return 200, {"Content-Type": "text/xml"}, xml.encode()
    return servers.Stub(handler)


def test_web_identity_end_to_end_rereads_the_token_file(moto, data, tmp_path):
    token = tmp_path / "token"
    token.write_text("jwt-one")
    seen = []
    stub = sts_stub(moto, seen)
    try:
        env = {"AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{stub.port}",
               "AWS_ROLE_ARN": data["role_arn"], "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
               "AWS_ROLE_SESSION_NAME": "s1", "AWS_EC2_METADATA_DISABLED": "true"}
        assert fetch(["ref+awsssm://prod/other"], env)["ref+awsssm://prod/other"] == \
            "not-under-app"
        token.write_text("jwt-two")  # the kubelet rotated it
        fetch(["ref+awsssm://prod/other"], env)
        assert [f["WebIdentityToken"] for f in seen] == ["jwt-one", "jwt-two"]
        assert seen[0]["Action"] == "AssumeRoleWithWebIdentity" and seen[0]["RoleSessionName"] == "s1"
        token.unlink()
        with pytest.raises(ShimError, match="read web identity token"):
            fetch(["ref+awsssm://prod/other"], env)
    finally:
        stub.stop()


def test_web_identity_against_moto_sts(workdir, data, tmp_path):
    """moto's own STS (an instance without signature checking, see sts_stub) for the real
    AssumeRoleWithWebIdentity response shape."""
    other = servers.Moto(workdir, check_signatures=False)
    try:
        token = tmp_path / "token"
        token.write_text("eyJ.fake.jwt")  # moto does not validate the web identity token
        env = {"AWS_ENDPOINT_URL": other.url, "AWS_REGION": "us-east-1",
               "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa",
               "AWS_WEB_IDENTITY_TOKEN_FILE": str(token)}
        creds = awscreds.resolve(Context(env, Client()))
        assert creds.provider == "web-identity"
        assert creds.access_key.startswith("ASIA") and creds.token and creds.expiration
    finally:
        other.stop()


def test_imds_v2_token_then_role_credentials(moto):
    """moto serves IMDS (/latest/api/token, /latest/meta-data/...) with fixed credentials."""
    ctx = Context({"AWS_EC2_METADATA_SERVICE_ENDPOINT": moto.url + "/"}, Client())
    creds = awscreds.resolve(ctx)
    assert (creds.provider, creds.access_key) == ("imds", "test-key")


def test_imds_token_is_sent(moto):
    """A stub checks the IMDSv2 protocol itself: PUT with a TTL, then the token on each GET."""
    def handler(req):
        if req.command == "PUT" and req.path == "/latest/api/token":
            assert req.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
            return 200, {}, b"tok-123"
        if req.headers.get("x-aws-ec2-metadata-token") != "tok-123":
            return 401, {}, b""
        if req.path == "/latest/meta-data/iam/security-credentials/":
            return 200, {}, b"role-a\n"
        if req.path == "/latest/meta-data/iam/security-credentials/role-a":
            return 200, {}, json.dumps({"AccessKeyId": moto.key_id,
                                        "SecretAccessKey": moto.secret, "Token": "",
                                        "Expiration": "2099-01-01T00:00:00Z"}).encode()
        return 404, {}, b""
    stub = servers.Stub(handler)
    try:
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{stub.port}",
               "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1"}
        assert fetch(["ref+awsssm://prod/other"], env)["ref+awsssm://prod/other"] == \
            "not-under-app"
    finally:
        stub.stop()


def container_stub(moto, expect_auth=None):
    def handler(req):
        if expect_auth is not None and req.headers.get("Authorization") != expect_auth:
            return 401, {}, b'{"message": "bad token"}'
        return 200, {"Content-Type": "application/json"}, json.dumps({
            "AccessKeyId": moto.key_id, "SecretAccessKey": moto.secret,
            "Expiration": "2099-01-01T00:00:00Z"}).encode()
    return servers.Stub(handler)


def test_ecs_relative_uri(moto, data):
    stub = container_stub(moto)
    try:
        env = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc",
               "SHIM_AWS_CONTAINER_CREDENTIALS_HOST": f"http://127.0.0.1:{stub.port}",
               "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1"}
        assert fetch(["ref+awsssm://prod/other"], env)["ref+awsssm://prod/other"] == \
            "not-under-app"
        assert stub.requests[0][1] == "/v2/credentials/abc"
    finally:
        stub.stop()


def test_pod_identity_full_uri_with_token_file(moto, data, tmp_path):
    stub = container_stub(moto, expect_auth="pod-token")
    token = tmp_path / "eks-pod-identity-token"
    token.write_text("pod-token\n")
    try:
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{stub.port}/v1/credentials",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
               "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1"}
        assert fetch(["ref+awsssm://prod/other"], env)["ref+awsssm://prod/other"] == \
            "not-under-app"
        token.write_text("other")
        with pytest.raises(ShimError, match="HTTP 401"):
            fetch(["ref+awsssm://prod/other"], env)
    finally:
        stub.stop()


def test_full_uri_host_must_be_allowed():
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds", "AWS_REGION": "x"}
    with pytest.raises(ShimError, match="not allowed"):
        fetch(["ref+awsssm://prod/other"], env)


def test_env_credentials_come_first(moto):
    ctx = Context(moto.env(AWS_SESSION_TOKEN="tok",
                           AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:9/x"), Client())
    creds = awscreds.resolve(ctx)
    assert (creds.provider, creds.token) == ("env", "tok")
    assert moto.secret not in repr(creds)


def test_role_arn_assumes_the_role(moto, data):
    """`?role_arn=`: STS AssumeRole signed with the chain's key; moto then checks the signature
    made with the assumed role's temporary credentials."""
    from shim.sources.fetch import Item, fetch_all
    from shim.sources.refs import parse
    iam = moto.client("iam")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/shim"}}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="reader", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    store = {}
    ref = f"ref+awsssm://prod/other?role_arn={role}"
    [res] = fetch_all([Item(parse(ref))], env=moto.env(), store=store)
    assert res.value == "not-under-app"
    creds = store[("aws-role", role)]
    assert creds.provider == "assume-role" and creds.token and creds.access_key != moto.key_id
    with pytest.raises(ShimError, match="STS AssumeRole for arn:aws:iam::123456789012:role/none"):
        fetch(["ref+awsssm://prod/other?role_arn=arn:aws:iam::123456789012:role/none"],
              moto.env(AWS_SECRET_ACCESS_KEY="wrong" * 8))


def test_ssm_parameters_are_batched(moto, data):
    """12 parameters of one region in 2 GetParameters calls (10 names each at most), against
    moto for the values; a recording stub in front counts the calls."""
    import urllib.request

    def forward(req):  # a loopback pass-through to moto that records each call
        fwd = urllib.request.Request(moto.url + req.path, data=req.body or None,
                                     method=req.command,
                                     headers={k: v for k, v in req.headers.items()
                                              if k.lower() != "content-length"})
        try:
            with urllib.request.urlopen(fwd, timeout=10) as r:
                return r.status, {"Content-Type": r.headers.get("Content-Type", "")}, r.read()
        except urllib.error.HTTPError as err:
            return err.code, {}, err.read()
    stub = servers.Stub(forward)
    try:
        refs = [f"ref+awsssm://prod/app/key-{i:02d}" for i in range(12)]
        refs.append("ref+awsssm://prod/app/missing")
        env = moto.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{stub.port}")
        with pytest.raises(ShimError, match="ref\\+awsssm://prod/app/missing .*not found"):
            fetch(refs, env)
        stub.requests.clear()
        got = fetch(refs[:12], env)
        assert [got[r] for r in refs[:12]] == [f"v{i:02d}" for i in range(12)]
        targets = [h.get("X-Amz-Target") for _, _, h in stub.requests]
        assert targets == ["AmazonSSM.GetParameters"] * 2
    finally:
        stub.stop()
