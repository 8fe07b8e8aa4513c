"""Google Cloud Secret Manager and Azure Key Vault (issue 19, rule 5) in whole runs.

No server emulates these APIs or their credential flows here, so these tests run against
LOOPBACK STUBS that implement the documented REST endpoints and CHECK what shim sends:
the bearer token on every secret read, Metadata-Flavor: Google (GCE metadata server),
the RFC 8693 token-exchange form at Google STS with the OIDC token file's contents and the
impersonation call's bearer token (workload identity federation), the client-assertion grant
at Microsoft Entra ID with the federated token file's contents (AKS workload identity),
X-IDENTITY-HEADER (App Service / Container Apps managed identity) and Metadata: true (IMDS).
A request without the right credentials gets 401/403, as the real services answer.
Nothing leaves loopback: GCE_METADATA_HOST, SHIM_GCP_SECRETMANAGER_ENDPOINT,
SHIM_AZURE_KEYVAULT_ENDPOINT, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT and
AZURE_POD_IDENTITY_AUTHORITY_HOST point at the stubs."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from servers import Stub

from support import base_env, run

PROJECT = "my-proj"


def env_of(out):
    return dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)


def shim(args, env):
    return run(["--no-mask-secrets", *args], env)


def jbody(obj):
    return json.dumps(obj).encode()


# -- Google ---------------------------------------------------------------------------------
class Google:
    """Secret Manager (v1 versions:access), the GCE metadata server, STS and IAM credentials."""

    SECRETS = {("db", "latest"): b'{"password": "gcp-pass-4Vw"}', ("db", "2"): b"gcp-old-9Zz",
               ("api", "latest"): b"gcp-api-key-1Qp"}

    def __init__(self):
        self.valid = set()  # bearer tokens Secret Manager accepts
        self.forbidden = {"locked"}
        self.stub = Stub(self.handle)
        self.url = f"http://127.0.0.1:{self.stub.port}"
        self.host = f"127.0.0.1:{self.stub.port}"

    def handle(self, req):
        path = urlsplit(req.path).path
        if path.startswith("/computeMetadata/"):
            if req.headers.get("Metadata-Flavor") != "Google":
                return 403, {}, b"Missing Metadata-Flavor:Google header."
            self.valid.add("gce-token-1")
            return 200, {"Metadata-Flavor": "Google", "Content-Type": "application/json"}, \
                jbody({"access_token": "gce-token-1", "expires_in": 3599, "token_type": "Bearer"})
        if path == "/v1/token":  # Google STS, RFC 8693
            form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
            want = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "audience": "//iam.googleapis.com/projects/1/locations/global/"
                                "workloadIdentityPools/pool/providers/prov",
                    "scope": "https://www.googleapis.com/auth/cloud-platform",
                    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "subject_token": "oidc-subject-token-xyz",
                    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}
            if form != want:
                return 400, {}, jbody({"error": "invalid_request", "error_description": "bad form"})
            self.valid.add("sts-token")
            return 200, {}, jbody({"access_token": "sts-token", "expires_in": 3600,
                                   "token_type": "Bearer"})
        if path.endswith(":generateAccessToken"):
            if req.headers.get("Authorization") != "Bearer sts-token":
                return 401, {}, jbody({"error": {"code": 401, "status": "UNAUTHENTICATED"}})
            self.valid.add("sa-token")
            return 200, {}, jbody({"accessToken": "sa-token", "expireTime": "2099-01-01T00:00:00Z"})
        prefix = f"/v1/projects/{PROJECT}/secrets/"
        if path.startswith(prefix) and path.endswith(":access"):
            auth = req.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.valid:
                return 401, {}, jbody({"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                 "message": "Request had invalid credentials."}})
            secret, _, version = path[len(prefix):-len(":access")].partition("/versions/")
            if secret in self.forbidden:
                return 403, {}, jbody({"error": {"code": 403, "status": "PERMISSION_DENIED",
                                                 "message": "Permission denied"}})
            data = self.SECRETS.get((secret, version))
            if data is None:
                return 404, {}, jbody({"error": {"code": 404, "status": "NOT_FOUND",
                                                 "message": "Secret not found"}})
            return 200, {}, jbody({"name": path, "payload": {
                "data": base64.b64encode(data).decode(), "dataCrc32c": "1"}})
        return 404, {}, b"no route"


@pytest.fixture
def google():
    g = Google()
    yield g
    g.stub.stop()


def google_env(g, **extra):
    return base_env(**dict({"SHIM_GCP_SECRETMANAGER_ENDPOINT": g.url,
                            "GCE_METADATA_HOST": g.host}, **extra))


def test_gcp_metadata_server_token_once_for_every_reference(google):
    env = google_env(google, DB_PASS=f"ref+gcpsecrets://{PROJECT}/db#/password",
                     OLD=f"ref+gcpsecrets://{PROJECT}/db?version=2",
                     DSN=f"pg://u:ref+gcpsecrets://{PROJECT}/db#/password+@h",
                     API=f"gcp:secretmanager:projects/{PROJECT}/secrets/api")
    r = shim(["--env-refs", "all", "--", "env"], env)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["DB_PASS"] == "gcp-pass-4Vw" and got["OLD"] == "gcp-old-9Zz"
    assert got["DSN"] == "pg://u:gcp-pass-4Vw@h" and got["API"] == "gcp-api-key-1Qp"
    token_calls = [p for m, p, h in google.stub.requests if p.startswith("/computeMetadata/")]
    assert len(token_calls) == 1  # cached per start, shared by the concurrent fetches
    assert all(h.get("Metadata-Flavor") == "Google" for m, p, h in google.stub.requests
               if p.startswith("/computeMetadata/"))
    assert b"gce-token-1" not in r.stdout and b"gce-token-1" not in r.stderr  # never passed on


def test_gcp_secrets_init_form_needs_env_refs_all(google):
    env = google_env(google, API=f"gcp:secretmanager:projects/{PROJECT}/secrets/api/versions/latest")
    r = shim(["--", "env"], env)
    assert env_of(r.stdout)["API"].startswith("gcp:secretmanager:")
    assert not google.stub.requests


def test_gcp_workload_identity_federation(google, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text("oidc-subject-token-xyz\n")
    creds = tmp_path / "wif.json"
    creds.write_text(json.dumps({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/"
                    "pool/providers/prov",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{google.url}/v1/token",
        "service_account_impersonation_url": f"{google.url}/v1/projects/-/serviceAccounts/"
                                             "app@my-proj.iam.gserviceaccount.com:generateAccessToken",
        "credential_source": {"file": str(token_file)}}))
    env = google_env(google, GOOGLE_APPLICATION_CREDENTIALS=str(creds),
                     GCE_METADATA_HOST="127.0.0.1:9")  # must not be asked
    r = shim(["--secret", f"API=ref+gcpsecrets://{PROJECT}/api", "--", "env"], env)
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["API"] == "gcp-api-key-1Qp"
    paths = [p for _, p, _ in google.stub.requests]
    assert paths[0] == "/v1/token" and paths[1].endswith(":generateAccessToken")
    read = [h for _, p, h in google.stub.requests if p.endswith(":access")]
    assert read[0]["Authorization"] == "Bearer sa-token"
    # A wrong subject token: STS refuses, shim fails closed naming the exchange.
    token_file.write_text("someone-else\n")
    r = shim(["--secret", f"API=ref+gcpsecrets://{PROJECT}/api", "--", "true"], env)
    assert r.returncode == 117 and b"token exchange" in r.stderr and b"invalid_request" in r.stderr


def test_gcp_optional_forgives_404_not_403(google):
    env = google_env(google, GONE=f"ref+gcpsecrets://{PROJECT}/nope?optional=true",
                     DFLT=f"ref+gcpsecrets://{PROJECT}/nope?default=d1")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert "GONE" not in got and got["DFLT"] == "d1"
    env = google_env(google, X=f"ref+gcpsecrets://{PROJECT}/locked?optional=true")
    r = shim(["--", "true"], env)
    assert r.returncode == 117 and b"PERMISSION_DENIED" in r.stderr


def test_gcp_metadata_without_flavor_header_is_not_trusted(tmp_path):
    fake = Stub(lambda req: (200, {}, jbody({"access_token": "t", "expires_in": 60})))
    try:
        env = base_env(GCE_METADATA_HOST=f"127.0.0.1:{fake.port}",
                       SHIM_GCP_SECRETMANAGER_ENDPOINT=f"http://127.0.0.1:{fake.port}",
                       X=f"ref+gcpsecrets://{PROJECT}/db")
        r = shim(["--", "true"], env)
        assert r.returncode == 117 and b"Metadata-Flavor" in r.stderr
    finally:
        fake.stop()


# -- Azure ----------------------------------------------------------------------------------
class Azure:
    """Key Vault secrets (api-version 7.4), Entra ID's token endpoint, managed identity."""

    SECRETS = {("kv-prod", "db-pass", ""): "az-pass-6Yh", ("kv-prod", "db-pass", "v1"): "az-old-2Ll",
               ("kv-prod", "cfg", ""): '{"k": "az-json-val"}'}

    def __init__(self):
        self.valid = set()
        self.stub = Stub(self.handle)
        self.url = f"http://127.0.0.1:{self.stub.port}"

    def handle(self, req):
        split = urlsplit(req.path)
        path, query = split.path, {k: v[0] for k, v in parse_qs(split.query).items()}
        if path == "/tenant-1/oauth2/v2.0/token":  # Entra ID: client-credentials grant
            form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
            base = {"client_id": "client-1", "scope": "https://vault.azure.net/.default",
                    "grant_type": "client_credentials"}
            if form == dict(base, client_assertion="projected-sa-token-abc",
                            client_assertion_type="urn:ietf:params:oauth:client-assertion-"
                                                  "type:jwt-bearer"):
                token = "aks-token"
            elif form == dict(base, client_secret="s3cr3t"):
                token = "sp-token"
            else:
                return 401, {}, jbody({"error": "invalid_client",
                                       "error_description": "AADSTS700024: bad assertion"})
            self.valid.add(token)
            return 200, {}, jbody({"access_token": token, "expires_in": 3599,
                                   "token_type": "Bearer"})
        if path == "/msi/token":  # App Service / Container Apps managed identity
            if req.headers.get("X-IDENTITY-HEADER") != "id-header-777" or \
                    query.get("api-version") != "2019-08-01" or \
                    query.get("resource") != "https://vault.azure.net":
                return 400, {}, jbody({"error": "bad_request"})
            self.valid.add("msi-token")
            return 200, {}, jbody({"access_token": "msi-token", "expires_on": "4102444800",
                                   "resource": "https://vault.azure.net", "token_type": "Bearer"})
        if path == "/metadata/identity/oauth2/token":  # IMDS
            if req.headers.get("Metadata") != "true" or query.get("api-version") != "2018-02-01":
                return 400, {}, jbody({"error": "invalid_request"})
            self.valid.add("imds-token")
            return 200, {}, jbody({"access_token": "imds-token", "expires_in": "3599",
                                   "token_type": "Bearer"})
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "secrets":
            auth = req.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.valid:
                return 401, {}, jbody({"error": {"code": "Unauthorized",
                                                 "message": "AKV10000: Request is missing a Bearer"}})
            if query.get("api-version") != "7.4":
                return 400, {}, jbody({"error": {"code": "BadParameter"}})
            if parts[2] == "locked":
                return 403, {}, jbody({"error": {"code": "Forbidden", "message": "no get"}})
            value = self.SECRETS.get((parts[0], parts[2], parts[3] if len(parts) > 3 else ""))
            if value is None:
                return 404, {}, jbody({"error": {"code": "SecretNotFound",
                                                 "message": "A secret with (name/id) was not found"}})
            return 200, {}, jbody({"value": value, "id": req.path, "attributes": {"enabled": True}})
        return 404, {}, b"no route"


@pytest.fixture
def azure():
    a = Azure()
    yield a
    a.stub.stop()


def azure_env(a, **extra):
    return base_env(**dict({"SHIM_AZURE_KEYVAULT_ENDPOINT": a.url + "/{vault}",
                            "SHIM_AZURE_IMDS": "off"}, **extra))


def test_azure_aks_workload_identity(azure, tmp_path):
    token = tmp_path / "azure-identity-token"
    token.write_text("projected-sa-token-abc")
    env = azure_env(azure, AZURE_FEDERATED_TOKEN_FILE=str(token), AZURE_CLIENT_ID="client-1",
                    AZURE_TENANT_ID="tenant-1", AZURE_AUTHORITY_HOST=azure.url + "/",
                    PASS="ref+azurekeyvault://kv-prod/db-pass",
                    OLD="ref+azurekeyvault://kv-prod/db-pass/v1",
                    JSONK="x-ref+azurekeyvault://kv-prod/cfg#/k+")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert got["PASS"] == "az-pass-6Yh" and got["OLD"] == "az-old-2Ll"
    assert got["JSONK"] == "x-az-json-val"
    assert azure.stub.count("/tenant-1/oauth2/v2.0/token") == 1
    assert b"aks-token" not in r.stdout
    token.write_text("forged")
    r = shim(["--", "true"], env)
    assert r.returncode == 117 and b"AADSTS700024" in r.stderr


def test_azure_client_secret(azure):
    env = azure_env(azure, AZURE_CLIENT_SECRET="s3cr3t", AZURE_CLIENT_ID="client-1",
                    AZURE_TENANT_ID="tenant-1", AZURE_AUTHORITY_HOST=azure.url,
                    PASS="ref+azurekeyvault://kv-prod/db-pass")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["PASS"] == "az-pass-6Yh"


def test_azure_managed_identity_endpoint_and_imds(azure):
    env = azure_env(azure, IDENTITY_ENDPOINT=azure.url + "/msi/token",
                    IDENTITY_HEADER="id-header-777", PASS="ref+azurekeyvault://kv-prod/db-pass")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["PASS"] == "az-pass-6Yh"
    env = azure_env(azure, SHIM_AZURE_IMDS="", AZURE_POD_IDENTITY_AUTHORITY_HOST=azure.url,
                    PASS="ref+azurekeyvault://kv-prod/db-pass")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    assert env_of(r.stdout)["PASS"] == "az-pass-6Yh"
    assert azure.stub.count("/metadata/identity/oauth2/token") == 1


def test_azure_optional_forgives_404_not_403(azure):
    env = azure_env(azure, IDENTITY_ENDPOINT=azure.url + "/msi/token",
                    IDENTITY_HEADER="id-header-777",
                    GONE="ref+azurekeyvault://kv-prod/nope?optional=true",
                    DFLT="ref+azurekeyvault://kv-prod/nope?default=dd")
    r = shim(["--", "env"], env)
    assert r.returncode == 0, r.stderr
    got = env_of(r.stdout)
    assert "GONE" not in got and got["DFLT"] == "dd"
    env["X"] = "ref+azurekeyvault://kv-prod/locked?optional=true"
    r = shim(["--", "true"], env)
    assert r.returncode == 117 and b"Forbidden" in r.stderr
    env = azure_env(azure, X="ref+azurekeyvault://kv-prod/db-pass")
    r = shim(["--", "true"], env)  # no credentials at all (IMDS disabled): one line, 117
    assert r.returncode == 117 and b"no Azure credentials" in r.stderr
