"""Image lookup against a real registry: Debian's docker-registry on loopback with TLS (a test CA)
and htpasswd basic auth, holding the tools image's two-arch index pushed with skopeo."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tools_support import REPO, free_port, require_tool, run

sys.path.insert(0, str(REPO / "tests" / "tooling"))
from tooling_support import shim_tools  # noqa: E402
from webhook_support import make_certs  # noqa: E402

USER, PASSWORD = "robot", "s3cret-pw"


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory, archive):
    """(host:port, CA file, auth file, index digest) of a TLS + htpasswd registry holding shim-tools:0.1.0."""
    binary = require_tool("docker-registry")
    require_tool("htpasswd")
    root = tmp_path_factory.mktemp("secure-registry")
    cert, key = make_certs(root, "registry")
    (root / "htpasswd").write_text(run(["htpasswd", "-Bbn", USER, PASSWORD]).stdout)
    port = free_port()
    (root / "config.yml").write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "auth": {"htpasswd": {"realm": "shim-test", "path": str(root / "htpasswd")}},
        "http": {"addr": f"127.0.0.1:{port}", "tls": {"certificate": str(cert), "key": str(key)}},
    }))
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    certs = root / "certs.d"
    certs.mkdir()
    (certs / "ca.crt").write_bytes((root / "ca.pem").read_bytes())
    deadline = time.monotonic() + 30
    while True:  # push the whole index (both platforms), digests preserved
        pushed = run(["skopeo", "copy", "-q", "--all", "--dest-cert-dir", certs, "--dest-creds", f"{USER}:{PASSWORD}",
                      f"oci-archive:{archive[0]}", f"docker://{host}/team/shim-tools:0.1.0"], check=False, timeout=300)
        if pushed.returncode == 0:
            break
        assert proc.poll() is None and time.monotonic() < deadline, pushed.stderr + (root / "registry.log").read_text()
        time.sleep(0.3)
    auth = root / "auth.json"
    auth.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}))
    raw = run(["skopeo", "inspect", "--raw", "--cert-dir", certs, "--creds", f"{USER}:{PASSWORD}",
               f"docker://{host}/team/shim-tools:0.1.0"]).stdout.encode()
    yield host, root / "ca.pem", auth, "sha256:" + hashlib.sha256(raw).hexdigest()
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def pod(image, args=None):
    container = {"name": "app", "image": image}
    if args:
        container["args"] = args
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [container]}})


def inject(reg, *args, image=None, env=None, input=None):
    host, ca, _auth, _ = reg
    return shim_tools("k8s", "inject", "--tools-image", "t", "--cache-dir", "", "--ca-file", ca, *args,
                      input=input or pod(image or f"{host}/team/shim-tools:0.1.0"),
                      env={"HOME": "/nonexistent", "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "", **(env or {})})


def container(proc):
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["spec"]["containers"][0]


def test_two_arch_index_with_basic_auth_and_pinning(secure_registry):
    host, _, auth, digest = secure_registry
    c = container(inject(secure_registry, "--auth-file", auth, "--pin-digest"))
    assert c["args"] == ["--", "/shim", "install"]
    assert c["image"] == f"{host}/team/shim-tools:0.1.0@{digest}"
    removed = shim_tools("k8s", "inject", "--remove", input=yaml.safe_dump(yaml.safe_load(
        inject(secure_registry, "--auth-file", auth, "--pin-digest").stdout)))
    assert yaml.safe_load(removed.stdout) == yaml.safe_load(pod(f"{host}/team/shim-tools:0.1.0"))


def test_in_pod_map_has_both_platforms(secure_registry):
    _, _, auth, _ = secure_registry
    c = container(inject(secure_registry, "--auth-file", auth, "--lookup", "in-pod",
                         input=pod(f"{secure_registry[0]}/team/shim-tools:0.1.0", ["/data"])))
    assert json.loads(c["args"][1]) == {"linux/amd64": {"Entrypoint": ["/shim", "install"], "Cmd": ["/data"]},
                                        "linux/arm64": {"Entrypoint": ["/shim", "install"], "Cmd": ["/data"]}}


def test_credentials_from_registry_auth_file_and_a_pull_secret(secure_registry, tmp_path):
    _host, _, auth, _ = secure_registry
    assert container(inject(secure_registry, env={"REGISTRY_AUTH_FILE": str(auth)}))["command"] == ["/shim/shim"]
    secret = tmp_path / "regcred.yaml"
    secret.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
                                      "type": "kubernetes.io/dockerconfigjson",
                                      "data": {".dockerconfigjson": base64.b64encode(auth.read_bytes()).decode()}}))
    assert container(inject(secure_registry, "--pull-secret", secret))["args"] == ["--", "/shim", "install"]


def one_line_failure(proc):
    assert proc.returncode == 125 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
    return proc.stderr


def test_401_without_credentials_names_image_registry_status_and_fix(secure_registry):
    host = secure_registry[0]
    err = one_line_failure(inject(secure_registry))
    assert err.startswith(f"shim: look up image {host}/team/shim-tools:0.1.0: registry {host} answered HTTP 401 "
                          "Unauthorized to GET /v2/team/shim-tools/manifests/0.1.0; log in (podman login")
    assert "--pull-secret" in err


def test_401_with_wrong_credentials_says_they_were_refused(secure_registry, tmp_path):
    host = secure_registry[0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"auths": {host: {"username": USER, "password": "wrong"}}}))
    err = one_line_failure(inject(secure_registry, "--auth-file", bad))
    assert "HTTP 401" in err and f"the credentials for {host} from {bad} were refused" in err


def test_404_for_a_missing_tag(secure_registry):
    host, _, auth, _ = secure_registry
    err = one_line_failure(inject(secure_registry, "--auth-file", auth, image=f"{host}/team/shim-tools:9.9"))
    assert "answered HTTP 404 Not Found to GET /v2/team/shim-tools/manifests/9.9" in err


def test_untrusted_ca_says_how_to_trust_it(secure_registry):
    host, _, auth, _ = secure_registry
    proc = shim_tools("k8s", "inject", "--tools-image", "t", "--cache-dir", "", "--auth-file", auth,
                      input=pod(f"{host}/team/shim-tools:0.1.0"), env={"HOME": "/nonexistent"})
    err = one_line_failure(proc)
    assert f"registry {host}'s TLS certificate is not trusted" in err and "--ca-file" in err


# -- bearer tokens: docker-registry with `auth: token` and a token service on loopback ----------
# Debian's docker-registry verifies bearer tokens but does not issue them (that is a separate
# service: docker_auth, Harbor core, a cloud IAM).  The issuer here is a small loopback stub that
# checks basic credentials and signs RS256 JWTs with openssl; what is under test is the real
# registry's challenge, its token verification, and our client's flow against both.


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    def __init__(self, root, service, issuer):
        import http.server
        import threading

        self.root, self.service, self.issuer = root, service, issuer
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", root / "signing.key", "-out",
             root / "signing.pem", "-days", "2", "-subj", "/CN=shim test token issuer"])
        der = subprocess.run(["openssl", "x509", "-in", str(root / "signing.pem"), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                outer.requests.append(query)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": outer.sign(access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def sign(self, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": USER, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.root / "signing.key")],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, archive):
    """(host:port, TokenService) of a plain-HTTP registry using bearer tokens, holding shim-tools:0.1.0."""
    binary = require_tool("docker-registry")
    root = tmp_path_factory.mktemp("token-registry")
    tokens = TokenService(root, "shim-test-registry", "shim-test-issuer")
    port = free_port()
    (root / "config.yml").write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "auth": {"token": {"realm": tokens.realm, "service": tokens.service, "issuer": tokens.issuer,
                           "rootcertbundle": str(root / "signing.pem")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        pushed = run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", "--dest-creds",
                      f"{USER}:{PASSWORD}", f"oci-archive:{archive[0]}", f"docker://{host}/team/shim-tools:0.1.0"],
                     check=False, timeout=300)
        if pushed.returncode == 0:
            break
        assert proc.poll() is None and time.monotonic() < deadline, pushed.stderr + (root / "registry.log").read_text()
        time.sleep(0.3)
    yield host, tokens, root
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    tokens.stop()


def test_bearer_token_flow_against_the_real_registry(token_registry):
    host, tokens, root = token_registry
    env = {"HOME": "/nonexistent", "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": ""}
    args = ("k8s", "inject", "--tools-image", "t", "--cache-dir", "", "--insecure-registry", host)
    proc = shim_tools(*args, input=pod(f"{host}/team/shim-tools:0.1.0"), env=env)
    err = one_line_failure(proc)  # the token service refuses anonymous requests
    assert f"answered HTTP 401 Unauthorized to GET token from 127.0.0.1:{tokens.server.server_address[1]}" in err
    auth = root / "auth.json"
    auth.write_text(json.dumps({"auths": {host: {"username": USER, "password": PASSWORD}}}))
    tokens.requests.clear()
    proc = shim_tools(*args, "--auth-file", auth, "--lookup", "in-pod",
                      input=pod(f"{host}/team/shim-tools:0.1.0"), env=env)
    c = container(proc)
    assert sorted(json.loads(c["args"][1])) == ["linux/amd64", "linux/arm64"]
    # One token, asked for with the registry's own service and a pull scope, served every request.
    assert tokens.requests == [{"service": ["shim-test-registry"], "scope": ["repository:team/shim-tools:pull"]}]


def test_credentials_from_home_docker_config(secure_registry, tmp_path):
    _, _, auth, _ = secure_registry
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_bytes(auth.read_bytes())
    c = container(inject(secure_registry, env={"HOME": str(tmp_path)}))
    assert c["args"] == ["--", "/shim", "install"]


def test_anonymous_pull_from_an_open_registry(registry, archive):
    run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci-archive:{archive[0]}",
         f"docker://{registry}/open/shim-tools:0.1.0"], timeout=300)
    proc = shim_tools("k8s", "inject", "--tools-image", "t", "--cache-dir", "", "--insecure-registry", registry,
                      "--pin-digest", input=pod(f"{registry}/open/shim-tools:0.1.0"),
                      env={"HOME": "/nonexistent", "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": ""})
    c = container(proc)
    assert c["args"] == ["--", "/shim", "install"] and c["image"].endswith("@" + archive[1])
