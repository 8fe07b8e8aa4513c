"""TLS failures in words: no "[X509] PEM lib (_ssl.c:4123)", and the file is named."""

import socket
import threading

import pytest

from shim.errors import ShimError
from shim.net import tls
from shim.net.http import Client, HttpError
from shim.sources.base import SourceError, tls_context

BAD = {
    "garbage": (b"garbage\n", "no certificate in it (expected PEM"),
    "truncated": (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                  "a PEM block in it cannot be read"),
}


def python_internals(text):
    return "_ssl.c" in text or "[X509" in text or "[SSL" in text or "Error" in text


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_ca_file_is_said_in_words(kind, tmp_path):
    data, words = BAD[kind]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(data)
    with pytest.raises(ShimError) as info:
        tls.client_context(cafile=str(ca))
    assert words in info.value.cause and not python_internals(info.value.message())
    with pytest.raises(SourceError) as info:  # what a source shows: the file and the words
        tls_context(str(ca), what="Vault CA")
    assert info.value.cause.startswith(f"load Vault CA {ca}: {words}")


def test_a_missing_ca_file(tmp_path):
    with pytest.raises(ShimError) as info:
        tls.client_context(cafile=str(tmp_path / "nope.pem"))
    assert info.value.cause == "no such file or directory"


def test_a_bad_ssl_cert_file_fails_the_request_not_the_process(tmp_path, monkeypatch):
    bad = tmp_path / "bundle.pem"
    bad.write_bytes(BAD["garbage"][0])
    monkeypatch.setenv("SSL_CERT_FILE", str(bad))
    with pytest.raises(HttpError) as info:  # was a ShimError escaping the client
        Client(env={}).request("GET", "https://127.0.0.1:9/x")
    assert f"SSL_CERT_FILE={bad}" in info.value.cause and "no certificate in it" in info.value.cause


def test_tls_to_a_plain_http_port_says_so():
    # A loopback stub answering plain HTTP where TLS was expected (no real server does it on purpose).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def answer():
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(HttpError) as info:
            Client(env={}, retry=None).request("GET", f"https://127.0.0.1:{srv.getsockname()[1]}/",
                                               tls=tls.client_context(), retry=_once())
    finally:
        srv.close()
    assert "did not answer in TLS (is it plain http?)" in info.value.cause
    assert not python_internals(info.value.cause)


def _once():
    from shim.net.http import NO_RETRY
    return NO_RETRY
