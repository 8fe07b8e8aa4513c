"""AWS sources over the shim HTTP client: SigV4, the credential chain, SM, SSM, S3."""
