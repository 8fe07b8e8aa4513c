"""Azure Key Vault: `ref+azurekeyvault://VAULT-NAME/SECRET[/VERSION]` (as vals writes it).

    GET https://VAULT-NAME.vault.azure.net/secrets/SECRET[/VERSION]?api-version=7.4
    Authorization: Bearer TOKEN   ->  {"value": "...", "id": ..., "attributes": {...}}

The secret's `value` is the value (JSON pointers apply).  A 404 (SecretNotFound) is missing,
what ?optional= forgives; 401/403 and the rest fail closed.

Credentials, in DefaultAzureCredential's order, for the resource https://vault.azure.net:
  1. A client secret: AZURE_CLIENT_SECRET with AZURE_CLIENT_ID and AZURE_TENANT_ID.
  2. AKS workload identity: AZURE_FEDERATED_TOKEN_FILE (the projected service-account token,
     re-read on every exchange), AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST
     (default https://login.microsoftonline.com/) -> a client-credentials grant with the
     token as client_assertion at {authority}/{tenant}/oauth2/v2.0/token.
  3. Managed identity: IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Container Apps,
     Arc: api-version 2019-08-01, header X-IDENTITY-HEADER), MSI_ENDPOINT + MSI_SECRET (the
     older App Service form), else IMDS (http://169.254.169.254, header Metadata: true;
     AZURE_POD_IDENTITY_AUTHORITY_HOST moves it, as azure-identity honours;
     SHIM_AZURE_IMDS=off disables it).  AZURE_CLIENT_ID picks a user-assigned identity.
The token is fetched once per start, renewed a minute before expiry, never passed on.

SHIM_AZURE_KEYVAULT_ENDPOINT overrides the vault's base URL; `{vault}` in it is replaced by
the vault name (a private endpoint, or a loopback stub in tests).  Hand-written: the Azure
SDK is not stdlib (azure-identity + azure-keyvault-secrets import in 148.6 ms and add
3.28 MiB of bytecode to the binary, against 8.7 ms and 268 KiB for this module: scripts/bench
alternatives; docs/architecture.md); these are four documented REST calls.
"""

from urllib.parse import quote, urlencode

from shim.sources.base import SourceError, cached_token, cloud_error, json_object, read_secret_file
from shim.util.jsonio import scan

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref

API_VERSION = "7.4"
RESOURCE = "https://vault.azure.net"
SCOPE = RESOURCE + "/.default"
AUTHORITY = "https://login.microsoftonline.com/"
IMDS = "http://169.254.169.254"
IMDS_PATH = "/metadata/identity/oauth2/token"
EXPIRY_MARGIN = 60.0
UNKNOWN_LIFETIME = 300.0
METADATA_TIMEOUT = 3.0


def fetch(ref: "Ref", ctx: "Context") -> str:
    vault, _, rest = ref.path.partition("/")
    name, _, version = rest.partition("/")
    base = ctx.env.get("SHIM_AZURE_KEYVAULT_ENDPOINT")
    base = base.replace("{vault}", vault) if base else f"https://{vault}.vault.azure.net"
    url = f"{base.rstrip('/')}/secrets/{quote(name, safe='')}"
    if version:
        url += "/" + quote(version, safe="")
    url += f"?api-version={API_VERSION}"
    resp = ctx.request("GET", url, headers={"Authorization": f"Bearer {access_token(ctx)}",
                                            "Accept": "application/json"})
    if resp.status == 401:  # a token revoked early: one fresh token, one more try
        ctx.forget("azure-token")
        resp = ctx.request("GET", url, headers={"Authorization": f"Bearer {access_token(ctx)}"})
    if not resp.ok:
        raise _error(resp)
    value = json_object(resp.body, "Key Vault").get("value")
    if not isinstance(value, str):
        raise SourceError("Key Vault returned no value")
    return value


def _error(resp):
    return cloud_error(resp, "code", "message")


# -- credentials ------------------------------------------------------------------------
def access_token(ctx: "Context") -> str:
    """The token, fetched once for every reference of every phase of this start."""
    return cached_token(ctx, "azure-token", _token, EXPIRY_MARGIN)


def _token(ctx):
    env = ctx.env
    client, tenant = env.get("AZURE_CLIENT_ID"), env.get("AZURE_TENANT_ID")
    if env.get("AZURE_CLIENT_SECRET") and client and tenant:
        return _client_credentials(ctx, tenant, {"client_id": client,
                                                 "client_secret": env["AZURE_CLIENT_SECRET"]})
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        if not client or not tenant:
            raise SourceError("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_CLIENT_ID or "
                              "AZURE_TENANT_ID is not (AKS workload identity sets all three)")
        assertion = read_secret_file(env["AZURE_FEDERATED_TOKEN_FILE"],
                                     "federated token file", one_line=True)
        return _client_credentials(ctx, tenant, {
            "client_id": client,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})
    return _managed_identity(ctx, client)


def _client_credentials(ctx, tenant, fields):
    authority = (ctx.env.get("AZURE_AUTHORITY_HOST") or AUTHORITY).rstrip("/")
    url = f"{authority}/{quote(tenant, safe='')}/oauth2/v2.0/token"
    form = dict(fields, scope=SCOPE, grant_type="client_credentials")
    resp = ctx.request("POST", url, headers={"Content-Type": "application/x-www-form-urlencoded",
                                             "Accept": "application/json"},
                       body=urlencode(form).encode())
    if not resp.ok:
        raise SourceError(f"Microsoft Entra token request: {_oauth_error(resp)}")
    return _token_of(ctx, json_object(resp.body, "Microsoft Entra ID"))


def _managed_identity(ctx, client):
    env = ctx.env
    query = {"resource": RESOURCE}
    if client:
        query["client_id"] = client
    if env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER"):
        url = env["IDENTITY_ENDPOINT"]
        headers = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
        query["api-version"] = "2019-08-01"
        what = "the managed identity endpoint"
    elif env.get("MSI_ENDPOINT") and env.get("MSI_SECRET"):
        url, headers = env["MSI_ENDPOINT"], {"secret": env["MSI_SECRET"]}
        query["api-version"] = "2017-09-01"
        if client:
            query["clientid"] = query.pop("client_id")
        what = "the MSI endpoint"
    else:
        if env.get("SHIM_AZURE_IMDS", "").lower() in ("off", "false"):
            raise SourceError("no Azure credentials: set AZURE_FEDERATED_TOKEN_FILE, "
                              "AZURE_CLIENT_ID and AZURE_TENANT_ID (workload identity), or "
                              "run with a managed identity")
        host = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS
        url = host.rstrip("/") + IMDS_PATH
        headers = {"Metadata": "true"}
        query["api-version"] = "2018-02-01"
        what = "IMDS"
    sep = "&" if "?" in url else "?"
    from shim.net.http import NO_RETRY
    try:  # one quick try: without a managed identity nothing answers there
        resp = ctx.request("GET", url + sep + urlencode(query), headers=headers,
                           timeout=METADATA_TIMEOUT, retry=NO_RETRY)
    except SourceError as err:
        raise SourceError(f"no Azure credentials: no AZURE_CLIENT_SECRET or "
                          f"AZURE_FEDERATED_TOKEN_FILE, and {what} did not answer "
                          f"({err.cause})") from None
    if not resp.ok:
        raise SourceError(f"token from {what}: {_oauth_error(resp)}")
    return _token_of(ctx, json_object(resp.body, what))


def _token_of(ctx, data):
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceError("the token response has no access_token")
    expires = None
    for key, base in (("expires_in", ctx.now()), ("expires_on", 0.0)):
        try:  # expires_on is epoch seconds (or, from old MSI endpoints, a date: unknown)
            expires = base + float(data[key])
            break
        except (KeyError, TypeError, ValueError):
            continue
    # An unknown lifetime: asked again after a short while rather than trusted forever.
    return token, expires if expires is not None else ctx.now() + UNKNOWN_LIFETIME


def _oauth_error(resp):
    try:
        data = scan(resp.body)
        text = ": ".join(str(data[k]) for k in ("error", "error_description") if data.get(k))
        if not text and isinstance(data.get("error"), dict):
            text = str(data["error"].get("message") or "")
    except (ValueError, AttributeError, TypeError):
        text = resp.error_text()
    text = " ".join(text.split())
    return f"HTTP {resp.status}" + (f" {text[:300]}" if text else "")
