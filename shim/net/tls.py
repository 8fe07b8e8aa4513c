"""TLS client contexts (minimal stand-in; issue 9 owns the CA-bundle version of this module).

`client_context()` is the one way shim code gets an `ssl.SSLContext`: verification on,
hostname checking on, the system trust store plus any CA the caller names.
"""

import ssl


def client_context(cafile=None, capath=None, cadata=None):
    """A verifying client context trusting the default store plus `cafile`/`capath`/`cadata`."""
    ctx = ssl.create_default_context()
    if cafile or capath or cadata:
        ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    return ctx
