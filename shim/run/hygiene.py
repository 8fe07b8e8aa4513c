"""Credential hygiene of the delegate's environment (cheap: runs on every run).

Variables that configure shim's own access (SHIM_VAULT_*, SHIM_HTTP_*, SHIM_AWS_*,
SHIM_GCP_*, SHIM_AZURE_*) never reach the delegate.  The standard ones (VAULT_TOKEN, AWS_*,
GOOGLE_APPLICATION_CREDENTIALS, AZURE_CLIENT_SECRET...) pass through unchanged -- the
application may use them itself -- unless --scrub-credentials removes them (the platform
wants its bootstrap credentials gone); --scrub-env NAME removes any other.
"""

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.config.options import Config

SHIM_CREDENTIALS = ("SHIM_VAULT_", "SHIM_HTTP_", "SHIM_AWS_", "SHIM_GCP_", "SHIM_AZURE_")
STANDARD_CREDENTIALS = (
    "VAULT_TOKEN", "BAO_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    # Google and Azure, as their libraries read them (shim.sources.gcp, shim.sources.azure)
    "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_HEADER", "MSI_SECRET",
)


def scrub(env: "dict[str, str]", config: "Config") -> None:
    """Remove from `env` (in place) what the delegate must not get."""
    for name in [n for n in env if n.startswith(SHIM_CREDENTIALS)]:
        del env[name]
    if config.secrets.scrub_credentials:
        for name in STANDARD_CREDENTIALS:
            env.pop(name, None)
    for name in config.secrets.scrub_env:
        env.pop(name, None)
