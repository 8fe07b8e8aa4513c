"""`shim k8s webhook` over HTTPS: real AdmissionReview v1 documents, JSONPatch, TLS reload, bad requests."""

import base64
import copy
import json
import os
import socket
import ssl
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


# -- clients that connect and stall (issue 16 C13) -------------------------------------------


def _tls_client(webhook):
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=30)
    return webhook.ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def _closed_by_server(sock):
    """Block until the server ends the connection (EOF or reset); False if it never does within 30 s."""
    sock.settimeout(30)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_idle_and_slow_clients_never_hold_up_other_requests(webhook):
    idle = [socket.create_connection(("127.0.0.1", webhook.port)) for _ in range(60)]  # connect, send nothing
    half_hello = [socket.create_connection(("127.0.0.1", webhook.port)) for _ in range(10)]
    for sock in half_hello:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never finished
    slow = [_tls_client(webhook) for _ in range(10)]
    for sock in slow:  # headers begun, never ended; a body promised, never sent
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n")
    try:
        for _ in range(3):
            assert webhook.get("/healthz") == (200, "ok\n")
            status, answer = webhook.post(review(POD, uid="busy"))
            assert status == 200 and answer["response"]["allowed"] is True and "patch" in answer["response"]
    finally:
        for sock in idle + half_hello + slow:
            sock.close()


def test_client_timeout_closes_idle_and_trickling_connections(tmp_path):
    hook = Webhook(tmp_path, "--client-timeout", "1")
    try:
        idle = socket.create_connection(("127.0.0.1", hook.port))
        assert _closed_by_server(idle)
        hello = socket.create_connection(("127.0.0.1", hook.port))
        hello.sendall(b"\x16\x03\x01")
        assert _closed_by_server(hello)
        # Slowloris: a header byte at a time, each well inside the per-read timeout; the request's
        # deadline still ends it.  The client's wait between bytes is the server's close arriving, or not.
        slow = _tls_client(hook)
        slow.settimeout(0.2)
        closed, sent = False, 0
        for byte in b"POST /mutate HTTP/1.1\r\nX-Pad: " + b"a" * 200:
            try:
                slow.sendall(bytes([byte]))
                sent += 1
                if slow.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                closed = True
                break
        assert closed and sent < 200, sent
        slow.close()
        # Idle keep-alive connections end too; a fresh client is served as before.
        assert hook.get("/healthz") == (200, "ok\n")
        assert "Traceback" not in hook.logs()
    finally:
        hook.stop()


def test_deeply_nested_review_is_answered_per_on_error(webhook):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["command"] = ["placeholder"]
    body = json.dumps(review(pod, uid="deep")).replace('["placeholder"]', "[" * 100000 + "]" * 100000)
    status, answer = webhook.post(body.encode())
    assert status == 200 and answer["response"]["uid"] == "deep" and answer["response"]["allowed"] is True
    assert "nests more than" in answer["response"]["warnings"][0]
    assert webhook.get("/healthz") == (200, "ok\n") and "Traceback" not in webhook.logs()


@pytest.mark.parametrize("header", [b"Content-Length: abc", b"Content-Length: -5", b"Content-Length: 99999999"])
def test_bad_content_length_is_400_and_closes(webhook, header):
    sock = _tls_client(webhook)
    sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ")
    sock.close()


@pytest.mark.parametrize("args, cause", [
    (["--listen", "127.0.0.1:99999"], '--listen: "127.0.0.1:99999" is not HOST:PORT'),
    (["--listen", "127.0.0.1:²"], "is not HOST:PORT"),
    (["--listen", "[::1:8443"], "unclosed ["),
    (["--request-timeout", "nan"], '--request-timeout: "nan" is not a positive number of seconds'),
    (["--client-timeout", "0"], "--client-timeout"),
    (["--lookup-timeout", "-1"], "--lookup-timeout"),
])
def test_bad_listen_and_timeouts_are_one_line_usage_errors(tmp_path, args, cause):
    cert, key = make_certs(tmp_path, "one")
    proc = shim_tools("k8s", "webhook", "--tls-cert", cert, "--tls-key", key, "--tools-image", TOOLS,
                      *(["--listen", "127.0.0.1:0"] if "--listen" not in args else []), *args, timeout=20)
    assert proc.returncode == 125 and cause in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("field, value", [("args", 5), ("command", [1, True]), ("command", {"a": "b"}),
                                          ("command", "sleep 10")])
def test_malformed_container_fields_over_https_get_an_answer(webhook, field, value):
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][1][field] = value
    status, answer = webhook.post(review(pod, uid="m"))
    response = answer["response"]
    assert status == 200 and response["uid"] == "m" and response["allowed"] is True and "patch" not in response
    assert f"spec.containers[sidecar].{field}" in response["warnings"][0]
    assert "Traceback" not in webhook.logs()
