"""shimtools for real: injected manifests and webhook-patched pods run in `podman kube play`,
wrapped Dockerfiles built with podman and run, and the frozen binary pointing at the tooling.

The app images are built here from scripts/images bases: scratch (busybox),
musl (a musl-linked probe) and distroless-like (glibc files, no shell, the static
probe).  Containers without `command` have their ENTRYPOINT/CMD looked up in
local containers-storage.  `podman kube play` does not expand `$(VAR)` (checked:
it passes `$(WHO)` through literally), so expansion is tested in tests/tooling
against Kubernetes' own algorithm; here the commands avoid `$`.
"""

import json
import sys

import pytest
import yaml

from tools_support import REPO, podman, run, unique

sys.path.insert(0, str(REPO / "tests" / "tooling"))
from tooling_support import shim_tools  # noqa: E402
from webhook_support import Webhook, patched, review  # noqa: E402

# kind -> (Containerfile lines after FROM, what `podman logs` shows for ENTRYPOINT + CMD, for ENTRYPOINT + args)
APPS = {
    "scratch": (['ENTRYPOINT ["/bin/echo", "scratch-entry"]', 'CMD ["scratch-cmd"]'],
                "scratch-entry scratch-cmd", "scratch-entry from-args"),
    "musl": (['ENTRYPOINT ["/usr/local/bin/probe", "musl-entry"]', 'CMD ["musl-cmd"]'],
             "musl-entry musl-cmd", "musl-entry from-args"),
    "distroless": (["COPY --from=localhost/shim-test/musl:amd64 /usr/local/bin/probe-static /app/probe",
                    'ENTRYPOINT ["/app/probe", "distroless-entry"]', 'CMD ["d-cmd"]'],
                   "distroless-entry d-cmd", "distroless-entry from-args"),
}
RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


@pytest.fixture(scope="module")
def apps(image, tmp_path_factory):
    """kind -> a local app image with an ENTRYPOINT and a CMD."""
    refs = {}
    tag = unique("t")
    for kind, (lines, _, _) in APPS.items():
        image("musl")
        base = image(kind)
        d = tmp_path_factory.mktemp(kind)
        (d / "Containerfile").write_text("\n".join([f"FROM {base}", *lines, ""]))
        refs[kind] = f"localhost/shimtools-app-{kind}:{tag}"
        run(["podman", "build", "--isolation=chroot", "--pull=never", "-t", refs[kind], "-f", d / "Containerfile", d],
            timeout=300)
    yield refs
    for ref in refs.values():
        podman("rmi", "-f", ref, check=False)


def pod(name, app_ref, kind):
    """A restricted pod: one container without command (lookup), one with args only, one with a command."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": kind}},
            "spec": {"restartPolicy": "Never",
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [
                         {"name": "bare", "image": app_ref, "securityContext": RESTRICTED},
                         {"name": "args", "image": app_ref, "args": ["from-args"], "securityContext": RESTRICTED},
                         {"name": "cmd", "image": app_ref, "securityContext": RESTRICTED,
                          "command": ["/shim/shim", "--version"] if kind == "distroless" else
                          (["/bin/sh", "-c", "echo shell-form && echo second"] if kind == "scratch" else
                           ["/usr/local/bin/probe", "explicit"])},
                     ]}}


CMD_EXPECT = {"scratch": "shell-form\nsecond", "musl": "explicit", "distroless": "shim 0.1.0"}


def check_pod(kube, name, kind):
    _, with_cmd, with_args = APPS[kind]
    for container, expect in (("bare", with_cmd), ("args", with_args), ("cmd", CMD_EXPECT[kind])):
        full = f"{name}-{container}"
        code = kube.wait_exit(full, timeout=180)
        logs = kube.logs(full)
        assert code == 0 and expect in logs, (full, logs)


@pytest.mark.parametrize("kind", list(APPS))
def test_injected_pod_runs_in_kube_play(kind, apps, tools, kube, tmp_path):
    name = unique(f"inj-{kind}")
    manifest = yaml.safe_dump(pod(name, apps[kind], kind))
    proc = shim_tools("k8s", "inject", "--tools-image", tools["amd64"], "--cache-dir", tmp_path / "cache",
                      input=manifest)
    assert proc.returncode == 0, proc.stderr
    (doc,) = yaml.safe_load_all(proc.stdout)
    bare = doc["spec"]["containers"][0]
    assert bare["command"] == ["/shim/shim"] and bare["args"][0] == "--"
    kube.play([doc])
    check_pod(kube, name, kind)
    # What ran is shim, with the looked-up ENTRYPOINT + CMD after `--`.
    path, args = podman("inspect", "--format", "{{.Path}} {{json .Args}}", f"{name}-bare").stdout.split(" ", 1)
    assert path == "/shim/shim" and json.loads(args)[0] == "--"


def test_in_pod_lookup_runs_the_platform_entry(apps, tools, kube, tmp_path):
    name = unique("inpod")
    proc = shim_tools("k8s", "inject", "--tools-image", tools["amd64"], "--lookup", "in-pod", "--cache-dir", "",
                      input=yaml.safe_dump(pod(name, apps["musl"], "musl")))
    (doc,) = yaml.safe_load_all(proc.stdout)
    assert doc["spec"]["containers"][0]["args"][0] == "--image-entrypoint"
    kube.play([doc])
    check_pod(kube, name, "musl")


def test_webhook_patched_pod_runs_in_kube_play(apps, tools, kube, tmp_path):
    hook = Webhook(tmp_path, tools=tools["amd64"], sources=[])
    try:
        name = unique("hook")
        original = pod(name, apps["distroless"], "distroless")
        status, answer = hook.post(review(original))
        assert status == 200 and answer["response"]["allowed"], answer
        doc = patched(original, answer["response"])
    finally:
        hook.stop()
    assert doc["spec"]["initContainers"][0]["image"] == tools["amd64"]
    kube.play([doc])
    check_pod(kube, name, "distroless")


# -- Dockerfile wrap: built with podman (chroot isolation) and run ---------------------------------

WRAP_CASES = {
    "scratch": ('ENTRYPOINT ["/bin/echo", "hello"]\nCMD ["scratch"]\n', [], "hello scratch"),
    "musl": ("ENTRYPOINT /usr/local/bin/probe shell-form\n", [], "musl-probe ok"),
    # No ENTRYPOINT: Debian's CMD ["bash"] is inherited and re-stated; run with an explicit command.
    "debian-slim": ("RUN true\n", ["/bin/sh", "-c", "echo debian-behind-shim"], "debian-behind-shim"),
    "distroless": ("COPY --from=localhost/shim-test/musl:amd64 /usr/local/bin/probe-static /app\n"
                   'ENTRYPOINT ["/app", "distroless"]\n', [], "musl-probe ok"),
}


@pytest.mark.parametrize("kind", list(WRAP_CASES))
def test_dockerfile_wrap_builds_and_runs_on_each_base(kind, tools, image, tmp_path):
    body, run_args, expect = WRAP_CASES[kind]
    image("musl")
    (tmp_path / "Dockerfile").write_text(f"FROM {image(kind)}\n{body}")
    proc = shim_tools("dockerfile", "wrap", "-f", tmp_path / "Dockerfile", "--tools-image", tools["amd64"],
                      "--in-place", "--cache-dir", "")
    assert proc.returncode == 0, proc.stderr
    ref = f"localhost/{unique('wrapped')}:{kind}"
    run(["podman", "build", "--isolation=chroot", "--pull=never", "-t", ref, "-f", tmp_path / "Dockerfile", tmp_path],
        timeout=300)
    try:
        config = json.loads(podman("image", "inspect", ref).stdout)[0]["Config"]
        assert config["Entrypoint"][:1] == ["/shim"]
        out = podman("run", "--rm", "--read-only", "--user", "65534:65534", ref, *run_args, timeout=120)
        assert expect in out.stdout
        if kind == "debian-slim":
            assert config["Cmd"] == ["bash"] or config["Cmd"] == ["/bin/bash"]
    finally:
        podman("rmi", "-f", ref, check=False)


def test_frozen_binary_points_at_the_tooling(dist):
    proc = run([dist["amd64"], "k8s", "inject"], check=False)
    assert proc.returncode == 125
    assert proc.stderr == ("shim: k8s: not part of the runtime binary; the tooling ships in the Python package "
                           "(pip install 'shim[tools]') and in the tools image's -tooling variant\n")


def test_pvc_mode_runs_from_the_populated_version_directory(apps, tools, kube):
    from pathlib import Path

    from tools_support import load_manifests, pod_from

    pvc, job, _ = load_manifests("pvc-versioned.yaml")
    claim = unique("shimtools-pvc")
    pvc["metadata"]["name"] = claim
    job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = claim
    populator = pod_from(job, unique("populate"))
    populator["spec"]["containers"][0]["image"] = tools["amd64"]
    kube.play([pvc, populator])
    container = f"{populator['metadata']['name']}-populate"
    assert kube.wait_exit(container, timeout=180) == 0, kube.logs(container)
    version = Path(next(p for p in kube.logs(container).split() if p.startswith("/pvc/"))).parent.name

    name = unique("pvc-app")
    proc = shim_tools("k8s", "inject", "--mode", "pvc", "--version", version, "--claim", claim, "--cache-dir", "",
                      input=yaml.safe_dump(pod(name, apps["musl"], "musl")))
    (doc,) = yaml.safe_load_all(proc.stdout)
    assert doc["spec"]["containers"][0]["command"] == [f"/shim/{version}/shim-linux-amd64"]
    assert doc["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    kube.play([doc])
    check_pod(kube, name, "musl")
