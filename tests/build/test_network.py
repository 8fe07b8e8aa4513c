"""Network cells of the portability matrix: the built binary resolves names, verifies TLS
and fetches over HTTP in each base image, for both arches.

The test makes a network namespace (`ip netns add`) and runs tests/build/netserve.py in
it: a DNS stub on 127.0.0.53, an HTTPS server with a certificate from a CA made here, an
HTTP server.  Each container joins that namespace (`--network ns:/run/netns/NAME`) with
a Kubernetes-style resolv.conf (search domains, ndots:5) bind-mounted, so
`vault.vault.svc` resolves only through the search list, as in a pod.  Nothing leaves
the namespace.  The requests come from the binary itself (`shim __selftest fetch`).
"""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support import require_tool  # noqa: E402

BASES = ("scratch", "musl", "debian-slim", "distroless")
ARCHES = ("amd64", "arm64")
HERE = Path(__file__).resolve().parent
TIMEOUT = 120
HTTPS_NAME = "vault.vault.svc"  # what the client asks for; the certificate is for this name
HTTPS_FQDN = "vault.vault.svc.cluster.local"  # what DNS knows: reached through the search list
HTTP_NAME = "config.test"
HTTP6_NAME = "v6.test"  # only an AAAA record: ::1
HOSTS_NAME = "hosts-only.test"  # only in the bind-mounted /etc/hosts
HOSTS = f"127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {HOSTS_NAME}\n"
RESOLV_CONF = ("nameserver 127.0.0.53\n"
               "search vault.svc.cluster.local svc.cluster.local cluster.local\n"
               "options ndots:5\n")
VERIFY_FAILED = "certificate verify failed"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA and a server certificate for HTTPS_NAME signed by it."""
    require_tool("openssl")
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=shim test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HTTPS_NAME}",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text(f"subjectAltName=DNS:{HTTPS_NAME}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    (d / "resolv.conf").write_text(RESOLV_CONF)
    (d / "hosts").write_text(HOSTS)
    for path in d.iterdir():
        path.chmod(0o644)  # readable by uid 65534 in the restricted cells
    d.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def netns(certs):
    """A fresh network namespace with the test servers in it; yields its name."""
    require_tool("ip")
    name = f"shimtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, str(HERE / "netserve.py"),
                                   str(certs), f"{HTTPS_FQDN}=127.0.0.1", f"{HTTP_NAME}=127.0.0.1",
                                   f"{HTTP6_NAME}=::1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        yield name
    finally:
        if server:
            server.stdin.close()
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(params=[(b, a) for a in ARCHES for b in BASES], ids=lambda p: "-".join(p))
def run(request, image, binary, netns, certs):
    """run(*shim_args, env={}) -> CompletedProcess of the binary in a container on the test network."""
    base, arch = request.param
    ref = image(base, arch)

    def go(*argv, env=None):
        envs = [f"--env={k}={v}" for k, v in (env or {}).items()]
        cmd = ["podman", "run", "--rm", "--arch", arch, f"--network=ns:/run/netns/{netns}",
               "-v", f"{binary(arch)}:/shim:ro", "-v", f"{certs}/resolv.conf:/etc/resolv.conf:ro",
               "-v", f"{certs}/hosts:/etc/hosts:ro",
               "-v", f"{certs}/ca.pem:/test-ca/ca.pem:ro", *envs, ref, "/shim", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)

    return go


def test_name_tls_and_http(run):
    """Through search domains: HTTPS verifies with the test CA from SSL_CERT_FILE or --cafile,
    fails in one clear line without it; plain HTTP fetches by name over IPv4, over IPv6 (an
    AAAA-only name) and by an /etc/hosts entry; an unknown name fails in one line."""
    url = f"https://{HTTPS_NAME}:8443/"
    failures = []

    def check(what, proc, code, needle, stream="stdout"):
        text = getattr(proc, stream)
        if proc.returncode != code or needle not in text:
            failures.append(f"{what}: exit {proc.returncode} (want {code}, {needle!r} in {stream}); "
                            f"stdout={proc.stdout[-300:]!r} stderr={proc.stderr[-500:]!r}")
        return proc

    check("https with SSL_CERT_FILE", run("__selftest", "fetch", url, env={"SSL_CERT_FILE": "/test-ca/ca.pem"}),
          0, "hello over https")
    check("https with the endpoint's CA", run("__selftest", "fetch", url, "--cafile", "/test-ca/ca.pem"),
          0, "hello over https")
    bad = check("https without the CA", run("__selftest", "fetch", url), 118, VERIFY_FAILED, "stderr")
    if bad.stderr.count("\n") != 1 or not bad.stderr.startswith("shim: fetch ") or "trust store: " not in bad.stderr:
        failures.append(f"without the CA: want one 'shim: fetch …' line naming the trust store, got {bad.stderr!r}")
    check("http by name", run("__selftest", "fetch", f"http://{HTTP_NAME}:8080/"), 0, "hello over http")
    check("http by an IPv6-only name", run("__selftest", "fetch", f"http://{HTTP6_NAME}:8080/"), 0, "hello over http")
    check("http by an /etc/hosts name", run("__selftest", "fetch", f"http://{HOSTS_NAME}:8080/"), 0, "hello over http")
    check("unknown name", run("__selftest", "fetch", "http://nowhere.test:8080/"), 118, "cannot resolve", "stderr")
    assert not failures, "\n".join(failures)
