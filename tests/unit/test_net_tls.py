"""shim.net.tls: the trust-store order, and one-line errors for a store that cannot be read."""

import ssl

import pytest

from shim.errors import ShimError
from shim.net import cabundle, tls


@pytest.fixture
def no_image_bundle(monkeypatch):
    monkeypatch.setattr(tls, "IMAGE_BUNDLES", ())


@pytest.fixture
def embedded(monkeypatch):
    monkeypatch.setattr(cabundle, "_cache", [b"# ca-certificates 20990101~test (Debian)\n"])


def test_endpoint_ca_wins_over_everything(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    env = {"SSL_CERT_FILE": "/env.pem"}
    assert tls.trust_source(cafile=str(ca), environ=env) == f"endpoint CA {ca}"
    assert tls.trust_source(cadata="PEM", environ=env) == "endpoint CA the endpoint's CA data"


def test_environment_before_the_image(tmp_path, monkeypatch):
    bundle = tmp_path / "image.crt"
    bundle.write_text("")
    monkeypatch.setattr(tls, "IMAGE_BUNDLES", (str(bundle),))
    assert tls.trust_source(environ={"SSL_CERT_DIR": "/certs"}) == "SSL_CERT_DIR=/certs"
    assert tls.trust_source(environ={}) == f"image bundle {bundle}"


def test_the_first_image_path_that_exists(tmp_path, monkeypatch):
    present = tmp_path / "pki.crt"
    present.write_text("")
    monkeypatch.setattr(tls, "IMAGE_BUNDLES", (str(tmp_path / "absent.crt"), str(present)))
    assert tls.trust_source(environ={}) == f"image bundle {present}"


def test_embedded_bundle_last(no_image_bundle, embedded):
    assert tls.trust_source(environ={}) == "embedded bundle (ca-certificates 20990101~test)"


def test_nothing_at_all_is_named(no_image_bundle, monkeypatch):
    monkeypatch.setattr(cabundle, "_cache", [None])
    assert tls.trust_source(environ={}).startswith("none")
    assert cabundle.embedded_version() is None


def test_context_verifies_and_checks_names(no_image_bundle, monkeypatch):
    # Any real PEM will do: the build machine's bundle.
    with open(ssl.get_default_verify_paths().openssl_cafile, "rb") as f:
        monkeypatch.setattr(cabundle, "_cache", [b"# ca-certificates 1 (Debian)\n" + f.read()])
    ctx = tls.client_context(environ={})
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.shim_trust_source.startswith("embedded bundle")


def test_unreadable_store_is_one_line(tmp_path):
    with pytest.raises(ShimError) as err:
        tls.client_context(environ={"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
    message = err.value.message()
    assert message.startswith(f"load trust store SSL_CERT_FILE={tmp_path}/missing.pem: ")
    assert "\n" not in message


def test_verify_failure_names_the_store():
    err = ssl.SSLCertVerificationError(1, "x")
    err.verify_message = "unable to get local issuer certificate"
    text = tls.verify_failed(err, "embedded bundle")
    assert text == ("certificate verify failed (unable to get local issuer certificate); "
                    "trust store: embedded bundle; set SSL_CERT_FILE or the endpoint's CA option")


def test_endpoint_cadata_as_pem_bytes(no_image_bundle):
    """A CA read from a file or a secret arrives as bytes: PEM bytes work like PEM text."""
    with open(ssl.get_default_verify_paths().openssl_cafile, "rb") as f:
        pem = f.read()
    ctx = tls.client_context(cadata=pem, environ={})
    assert ctx.cert_store_stats()["x509_ca"] > 10
