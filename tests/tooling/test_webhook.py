"""`shim k8s webhook` over HTTPS: real AdmissionReview v1 documents, JSONPatch, TLS reload, bad requests."""

import base64
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from support import REPO
from tooling_support import shim_tools, write_layout

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
    def __init__(self, tmp, *extra):
        self.dir = tmp
        self.cert, self.key = make_certs(tmp, "one")
        (tmp / "tls.crt").write_bytes(self.cert.read_bytes())
        (tmp / "tls.key").write_bytes(self.key.read_bytes())
        write_layout(tmp / "app", {"amd64": {"Entrypoint": ["/app/entry"], "Cmd": ["default"]}})
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(tmp / "webhook.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shim", "k8s", "webhook", "--listen", f"127.0.0.1:{self.port}",
             "--tls-cert", tmp / "tls.crt", "--tls-key", tmp / "tls.key", "--tools-image", TOOLS, "--cache-dir", "",
             "--image-source", f"reg.example/app:1=oci:{tmp / 'app'}", *extra],
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


@pytest.fixture
def webhook(tmp_path):
    hook = Webhook(tmp_path)
    yield hook
    hook.stop()


def test_pod_creation_is_patched_like_inject_does(webhook):
    status, answer = webhook.post(review(POD))
    assert status == 200 and answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = apply_patch(POD, json.loads(base64.b64decode(response["patch"])))
    cli = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", "",
                     "--image-source", f"reg.example/app:1=oci:{webhook.dir / 'app'}", input=json.dumps(POD))
    assert patched == json.loads(cli.stdout)
    api, sidecar = patched["spec"]["containers"]
    assert api["command"] == ["/shim/shim"] and api["args"] == ["--", "/app/entry", "serve", "$(PORT)"]
    assert sidecar["args"] == ["--", "/bin/side"]
    assert patched["spec"]["initContainers"][0]["name"] == "install-shim"
    # Idempotent: the patched pod (a re-sent or already-injected pod) gets no patch.
    status, again = webhook.post(review(patched, uid="2"))
    assert again["response"] == {"uid": "2", "allowed": True}
    logs = [json.loads(line) for line in webhook.logs().splitlines()]
    injected = [r for r in logs if r["msg"] == "injected"]
    assert injected[0]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002" and injected[0]["namespace"] == "shop"
    assert injected[0]["containers"] == ["api", "sidecar"]


def test_opt_out_and_other_kinds_are_admitted_unchanged(webhook):
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = {"shim.dev/inject": "false"}
    assert webhook.post(review(pod, uid="a"))[1]["response"] == {"uid": "a", "allowed": True}
    assert webhook.post(review({"kind": "ConfigMap"}, uid="b", kind="ConfigMap"))[1]["response"] == {
        "uid": "b", "allowed": True}


@pytest.mark.parametrize("body, cause", [
    (b"not json", "body is not JSON"),
    (json.dumps({"kind": "Pod"}).encode(), "not an AdmissionReview"),
    (json.dumps(review(POD, api="admission.k8s.io/v1beta1")).encode(), "is not admission.k8s.io/v1"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}).encode(),
     "no request.uid"),
])
def test_requests_that_are_not_admission_reviews_get_400(webhook, body, cause):
    status, answer = webhook.post(body)
    assert status == 400 and cause in answer["error"] and "\n" not in answer["error"]
    assert webhook.get("/healthz") == (200, "ok\n")  # and the server carries on


def test_a_pod_that_cannot_be_injected_is_admitted_with_a_warning(webhook):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["image"] = "localhost/not-an-image-anywhere:1"
    response = webhook.post(review(pod, uid="w"))[1]["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "localhost/not-an-image-anywhere:1" in response["warnings"][0]


def test_deny_mode_and_time_budget(tmp_path):
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # accepts connections, never answers: a registry that hangs
    host = f"127.0.0.1:{hang.getsockname()[1]}"
    hook = Webhook(tmp_path, "--on-error", "deny", "--request-timeout", "1.5", "--insecure-registry", host)
    try:
        pod = copy.deepcopy(POD)
        pod["spec"]["containers"][0]["image"] = f"{host}/slow:1"
        started = time.monotonic()
        response = hook.post(review(pod, uid="d"))[1]["response"]
        assert time.monotonic() - started < 5
        assert response["allowed"] is False and response["status"]["code"] == 400
        assert f"{host}/slow:1" in response["status"]["message"]
    finally:
        hook.stop()
        hang.close()


def test_certificate_is_reloaded_when_the_files_change(webhook):
    assert ((("commonName", "one"),),) == webhook.served_cert()[-1:]
    cert, key = make_certs(webhook.dir, "two")
    # Replace as a Secret volume update does: new files renamed into place.
    for src, dst in ((key, "tls.key"), (cert, "tls.crt")):
        (webhook.dir / f"{dst}.new").write_bytes(src.read_bytes())
        os.replace(webhook.dir / f"{dst}.new", webhook.dir / dst)
    deadline = time.monotonic() + 10
    while webhook.served_cert()[-1:] != ((("commonName", "two"),),):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert webhook.post(review(POD, uid="after"))[1]["response"]["allowed"] is True


def test_missing_tls_files_fail_at_start(tmp_path):
    proc = shim_tools("k8s", "webhook", "--listen", "127.0.0.1:0", "--tls-cert", tmp_path / "no.crt",
                      "--tls-key", tmp_path / "no.key", "--tools-image", TOOLS)
    assert proc.returncode == 125
    assert proc.stderr.strip().endswith("no such file or directory; mount the serving certificate Secret "
                                        "(tls.crt, tls.key)")
