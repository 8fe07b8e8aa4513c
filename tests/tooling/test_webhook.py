"""`shim k8s webhook` over HTTPS: real AdmissionReview v1 documents, JSONPatch, TLS reload, bad requests."""

import base64
import copy
import json
import os
import socket
import time

import pytest
import yaml

from support import REPO
from tooling_support import shim_tools
from webhook_support import POD, TOOLS, Webhook, apply_patch, make_certs, review


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


def test_deploy_manifest_runs_the_webhook_with_consistent_settings():
    from shimtools.cli import parser

    docs = {d["kind"]: d for d in yaml.safe_load_all((REPO / "deploy/webhook.yaml").read_text())}
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    args = parser().parse_args(container["args"])  # the CLI accepts exactly these arguments
    (hook,) = docs["MutatingWebhookConfiguration"]["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["clientConfig"]["service"]["path"] == "/mutate"
    assert args.request_timeout < hook["timeoutSeconds"]
    assert (hook["failurePolicy"], args.on_error) in (("Ignore", "allow"), ("Fail", "deny"))
    assert args.tls_cert.startswith(container["volumeMounts"][0]["mountPath"])
    assert hook["namespaceSelector"] == {"matchLabels": {"shim.dev/inject": "enabled"}}
