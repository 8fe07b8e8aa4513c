"""The tools image's -tooling variant (Dockerfile.tooling): built with podman from the staged lib
directory on a Python base, then `shim k8s inject` and the HTTPS webhook run inside it."""

import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from tools_support import REPO, free_port, podman, run, unique

sys.path.insert(0, str(REPO / "tests" / "tooling"))
from webhook_support import POD, make_certs, review  # noqa: E402


@pytest.fixture(scope="module")
def tooling_image(image, tmp_path_factory):
    ctx = tmp_path_factory.mktemp("tooling-context")
    run([sys.executable, REPO / "tools-image/tooling.py", "--out", ctx / "dist" / "tooling"])
    shutil.copy(REPO / "Dockerfile.tooling", ctx / "Dockerfile.tooling")
    ref = f"localhost/{unique('shim-tools')}:0.1.0-tooling"
    # Debian 12's python3 stands in for a python:3.11-slim base (nothing can be pulled here).
    run(["podman", "build", "--isolation=chroot", "--pull=never", "-f", ctx / "Dockerfile.tooling",
         "--build-arg", f"BASE={image('debian-servers')}", "-t", ref, ctx], timeout=300)
    yield ref
    podman("rmi", "-f", ref, check=False)


def tls_for_65534(tmp_path, cn):
    """A serving certificate in a directory the container's user 65534 can read: (dir, TLS client context)."""
    cert, key = make_certs(tmp_path, cn)
    tls = tmp_path / "tls"
    tls.mkdir()
    shutil.copy(cert, tls / "tls.crt")
    shutil.copy(key, tls / "tls.key")
    for path in (tmp_path, tls, tls / "tls.crt", tls / "tls.key"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    ctx.check_hostname = False  # the certificate names the Service; tests reach 127.0.0.1
    return tls, ctx


def wait_healthy(port, ctx, logs):
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=5) as r:
                assert r.read() == b"ok\n"
            return
        except OSError:
            assert time.monotonic() < deadline, logs()
            time.sleep(0.2)


def post_review(port, ctx, pod):
    req = urllib.request.Request(f"https://127.0.0.1:{port}/mutate", data=json.dumps(review(pod)).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.loads(r.read())["response"]


def test_inject_runs_in_the_tooling_image(tooling_image):
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "x", "command": ["/app", "$(X)"]}]}}
    proc = subprocess.run(["podman", "run", "--rm", "-i", "--read-only", tooling_image, "k8s", "inject",
                           "--tools-image", "reg.example/shim-tools:0.1.0"], input=yaml.safe_dump(doc),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = yaml.safe_load(proc.stdout)
    assert out["spec"]["containers"][0]["args"] == ["--", "/app", "$(X)"]
    assert out["spec"]["initContainers"][0]["image"] == "reg.example/shim-tools:0.1.0"
    config = json.loads(podman("image", "inspect", tooling_image).stdout)[0]["Config"]
    assert config["User"] == "65534:65534" and config["Entrypoint"] == ["python3", "-m", "shimtools"]


def test_dockerfile_wrap_uses_buildkits_parser_in_the_tooling_image(tooling_image):
    """The staged `dockerfile` package (BuildKit's parser) loads in the image and reads heredocs as BuildKit."""
    text = 'FROM debian\r\nENTRYPOINT ["/app"]\r\nCOPY <<A <<B /etc/\r\na\r\nA\r\nENTRYPOINT ["no"]\r\nB\r\n'
    proc = subprocess.run(["podman", "run", "--rm", "-i", "--read-only", tooling_image, "dockerfile", "wrap",
                           "-f", "-", "--tools-image", "reg.example/shim-tools:0.1.0"], input=text.encode(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = text.split("\r\n")
    assert proc.stdout.decode().split("\r\n") == [lines[0], "# shim dockerfile wrap",
                                                  "COPY --from=reg.example/shim-tools:0.1.0 /shim /shim",
                                                  'ENTRYPOINT ["/shim", "--", "/app"]', *lines[2:]]
    probe = subprocess.run(["podman", "run", "--rm", "--entrypoint", "python3", tooling_image, "-c",
                            "import dockerfile; print(dockerfile.parse_string('FROM a')[0].cmd)"],
                           capture_output=True, text=True, timeout=120)
    assert probe.stdout == "FROM\n", probe.stderr


def test_webhook_serves_https_from_the_tooling_image_and_stops_on_term(tooling_image, tmp_path):
    tls, ctx = tls_for_65534(tmp_path, "webhook")
    port = free_port()
    name = unique("webhook")
    podman("run", "-d", "--name", name, "--network", "host", "--read-only", "-v", f"{tls}:/tls:ro",
           tooling_image, "k8s", "webhook", "--listen", f"127.0.0.1:{port}", "--tls-cert", "/tls/tls.crt",
           "--tls-key", "/tls/tls.key", "--tools-image", "reg.example/shim-tools:0.1.0")
    try:
        wait_healthy(port, ctx, lambda: podman("logs", name, check=False).stderr)
        pod = json.loads(json.dumps(POD))
        for c in pod["spec"]["containers"]:
            c["command"] = ["/bin/app"]
        response = post_review(port, ctx, pod)
        assert response["allowed"] is True and response["patchType"] == "JSONPatch"
        started = time.monotonic()
        podman("stop", "-t", "20", name)
        assert time.monotonic() - started < 10  # TERM ends it; no wait for the KILL
        logs = [json.loads(line) for line in podman("logs", name).stderr.splitlines() if line.startswith("{")]
        assert [r["msg"] for r in logs][-1] == "stopped" and any(r["msg"] == "injected" for r in logs)
    finally:
        podman("rm", "-f", name, check=False)


def test_deploy_webhook_deployment_runs_in_kube_play(tooling_image, kube, tmp_path):
    """deploy/webhook.yaml's pod template, with two substitutions podman 4.3 needs: the TLS Secret volume
    becomes a hostPath (its `kind: Secret` support panics) and the port gets a hostPort."""
    from tools_support import pod_from

    docs = {d["kind"]: d for d in yaml.safe_load_all((REPO / "deploy/webhook.yaml").read_text())}
    name = unique("shim-webhook")
    pod = pod_from(docs["Deployment"], name)
    spec = pod["spec"]
    tls, ctx = tls_for_65534(tmp_path, "shim-webhook.shim-system.svc")
    spec["volumes"] = [{"name": "tls", "hostPath": {"path": str(tls), "type": "Directory"}}
                       if v["name"] == "tls" else v for v in spec["volumes"] if v["name"] != "registry-auth"]
    (container,) = spec["containers"]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "registry-auth"]
    container["image"] = tooling_image
    port = free_port()
    container["ports"][0]["hostPort"] = port
    container.pop("livenessProbe")  # podman runs httpGet probes with curl inside the image, which has none
    container.pop("readinessProbe")
    kube.play([pod])
    wait_healthy(port, ctx, lambda: kube.logs(f"{name}-webhook"))
    target = json.loads(json.dumps(POD))
    target["spec"]["containers"][0]["image"] = "localhost/not-in-this-image:1"  # lookup fails locally
    response = post_review(port, ctx, target)
    # The first container has no command and its image cannot be looked up: admitted unchanged, with a
    # warning (--on-error=allow, as the manifest pairs with failurePolicy: Ignore).
    assert response["allowed"] is True and "localhost/not-in-this-image:1" in response["warnings"][0]
