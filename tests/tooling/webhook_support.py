"""The webhook under test as a process over HTTPS, AdmissionReview documents, a JSONPatch applier.

Shared by tests/tooling/test_webhook.py and tests/tools/test_shimtools_kube.py.
"""

import base64
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from support import REPO
from tooling_support import write_layout

TOOLS = "localhost/shim-tools:test"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d, cn):
    """A test CA and a serving certificate for 127.0.0.1 signed by it."""
    if not (d / "ca.pem").exists():
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=shim test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{cn}.key", "-out", f"{cn}.csr", "-subj", f"/CN={cn}",
            cwd=d)
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:shim-webhook.shim-system.svc\n")
    openssl("x509", "-req", "-in", f"{cn}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            f"{cn}.pem", "-days", "2", "-extfile", "ext", cwd=d)
    return d / f"{cn}.pem", d / f"{cn}.key"


def review(pod, uid="705ab4f5-6393-11e8-b7cc-42010a800002", kind="Pod", api="admission.k8s.io/v1"):
    """An AdmissionReview as the API server sends it for `kubectl run` / a ReplicaSet's pod."""
    return {"apiVersion": api, "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": kind},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": pod, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"generateName": "api-7d9f-", "namespace": "shop", "labels": {"app": "api"}},
       "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [{"name": "api", "image": "reg.example/app:1", "args": ["serve", "$(PORT)"],
                                "env": [{"name": "PORT", "value": "8080"}]},
                               {"name": "sidecar", "image": "reg.example/app:1", "command": ["/bin/side"]}]}}


def apply_patch(doc, ops):
    """RFC 6902 add/remove on object members (all the webhook emits)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = op["path"].lstrip("/").split("/")
        node = doc
        for key in parents:
            node = node[key.replace("~1", "/").replace("~0", "~")]
        last = last.replace("~1", "/").replace("~0", "~")
        if op["op"] == "add":
            node[last] = op["value"]
        elif op["op"] == "remove":
            del node[last]
        else:
            raise AssertionError(op)
    return doc


class Webhook:
    def __init__(self, tmp, *extra, tools=TOOLS, sources=None):
        self.dir = tmp
        self.cert, self.key = make_certs(tmp, "one")
        (tmp / "tls.crt").write_bytes(self.cert.read_bytes())
        (tmp / "tls.key").write_bytes(self.key.read_bytes())
        write_layout(tmp / "app", {"amd64": {"Entrypoint": ["/app/entry"], "Cmd": ["default"]}})
        if sources is None:
            sources = [f"reg.example/app:1=oci:{tmp / 'app'}"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(tmp / "webhook.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shim", "k8s", "webhook", "--listen", f"127.0.0.1:{self.port}",
             "--tls-cert", tmp / "tls.crt", "--tls-key", tmp / "tls.key", "--tools-image", tools, "--cache-dir", "",
             *[a for s in sources for a in ("--image-source", s)], *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, env={**os.environ, "PYTHONPATH": str(REPO)})
        self.ctx = ssl.create_default_context(cafile=str(tmp / "ca.pem"))
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.get("/healthz") == (200, "ok\n"):
                    return
            except OSError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, self.logs()
            time.sleep(0.1)

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), context=self.ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()

    def post(self, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url("/mutate"), data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def served_cert(self):
        with socket.create_connection(("127.0.0.1", self.port)) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.getpeercert()["subject"]

    def logs(self):
        self.log.flush()
        return (self.dir / "webhook.log").read_text()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()



def patched(pod, response):
    """The pod as the API server stores it after the webhook's JSONPatch."""
    return apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
