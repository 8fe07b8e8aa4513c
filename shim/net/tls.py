"""TLS client contexts (minimal stand-in; issue 9 owns the CA-bundle version of this module,
which keeps this signature and semantics and adds the image/embedded bundle search).

`client_context()` is the one way shim code gets an `ssl.SSLContext`: verification and
hostname checking on.  An endpoint's own CA (`cafile`/`capath`/`cadata`) is the whole trust
store, as VAULT_CACERT and `curl --cacert` mean it; without one, the system store.
"""

import ssl


def client_context(cafile=None, capath=None, cadata=None):
    """A verifying client context: the endpoint's CA when given, else the default store."""
    if not (cafile or capath or cadata):
        return ssl.create_default_context()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    return ctx
