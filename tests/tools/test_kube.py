"""The deploy/ manifests: valid against the Kubernetes schemas, and run for real with `podman kube play`.

The pods are the manifests' own pod templates with only the images and the app
command replaced, so the security contexts, volumes and mounts under test are the
ones users copy.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from shim.util import platforms
from tools_support import (
    ARCHES,
    REPO,
    build_archive,
    load_archive,
    load_manifests,
    pod_from,
    podman,
    require_tool,
    run,
    unique,
    unload,
)

# kind -> (app command after `/shim/shim --`, text its log must contain)
PROBE_SH = "echo uid=$(id -u); touch /probe 2>/dev/null && echo rootfs=writable || echo rootfs=read-only"
APPS = {
    "scratch": (["/bin/sh", "-c", PROBE_SH], ["uid=65534", "rootfs=read-only"]),
    "musl": (["/usr/local/bin/probe", "hello"], ["musl-probe ok", "hello"]),
    "debian-slim": (["/bin/sh", "-c", PROBE_SH], ["uid=65534", "rootfs=read-only"]),
    # No program but glibc's loader in distroless: run it under shim, not shim itself,
    # so the row tests what a distroless app gets (a dynamic glibc program, shim PID 1).
    "distroless": (["LOADER", "--version"], ["GLIBC"]),
}


def test_manifests_validate_against_the_kubernetes_schemas():
    # The venv's (pyproject dev extra), else one on PATH.
    validate = shutil.which("kubernetes-validate", path=os.path.dirname(sys.executable)) or require_tool(
        "kubernetes-validate")
    files = sorted((REPO / "deploy").glob("*.yaml"))
    docs = sum(len(load_manifests(f.name)) for f in files)
    assert len(files) >= 2 and docs >= 4
    proc = run([validate, "--strict", *files])  # exits non-zero on any failure
    assert proc.stdout.count(" passed for resource ") == docs, proc.stdout


def test_init_containers_are_small_and_restricted():
    for name in ("emptydir-deployment.yaml", "pvc-versioned.yaml"):
        for doc in load_manifests(name):
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            spec = doc["spec"]["template"]["spec"]
            # The installer: the init container of a Deployment, the container of the populator Job.
            installers = spec["containers"] if doc["kind"] == "Job" else spec.get("initContainers", [])
            for c in installers:
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["capabilities"]["drop"] == ["ALL"]
                assert sc["seccompProfile"]["type"] == "RuntimeDefault"
                assert c["resources"]["requests"]["memory"].endswith("Mi")
            for c in spec["containers"]:
                shim_mounts = [m for m in c.get("volumeMounts", []) if m["name"] == "shim"]
                if doc["kind"] == "Deployment":
                    assert shim_mounts[0]["readOnly"] is True


def emptydir_pod(tools_ref, app_image, command, name):
    (deployment,) = load_manifests("emptydir-deployment.yaml")
    pod = pod_from(deployment, name)
    pod["spec"]["initContainers"][0]["image"] = tools_ref
    app = pod["spec"]["containers"][0]
    app["image"] = app_image
    assert app["command"][:2] == ["/shim/shim", "--"]
    app["command"] = ["/shim/shim", "--", *command]
    return pod


@pytest.mark.parametrize("kind, arch", [(k, "amd64") for k in APPS] + [("scratch", "arm64")])
def test_init_container_installs_into_emptydir_for_each_app_image_kind(kind, arch, tools, image, kube):
    command, expect = APPS[kind]
    command = [platforms.loader(arch) if word == "LOADER" else word for word in command]
    name = unique(f"shim-{kind}-{arch}")
    kube.play([emptydir_pod(tools[arch], image(kind, arch), command, name)])
    app = f"{name}-app"
    code = kube.wait_exit(app, timeout=180)
    logs = kube.logs(app)
    assert code == 0, logs
    for text in expect:
        assert text in logs, logs


def volume_path(name):
    return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip())


def snapshot(directory):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_mode,
                     hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(directory.iterdir())}


@pytest.fixture
def tools_v2(dist, tmp_path):
    """A second release: the same binaries plus one byte, so another digest and version directory."""
    d = tmp_path / "dist-v2"
    d.mkdir()
    for arch in ARCHES:
        (d / f"shim-linux-{arch}").write_bytes(dist[arch].read_bytes() + b"\0")
    path, _ = build_archive(d, tmp_path / "v2.oci.tar")
    refs = load_archive(path, f"localhost/shim-tools-test-v2:{unique('t')}")
    yield refs
    unload(refs)


def test_populator_job_pvc_consumer_and_version_2_while_version_1_runs(tools, tools_v2, image, kube):
    pvc, job, deployment = load_manifests("pvc-versioned.yaml")
    claim = unique("shim-tools-pvc")
    pvc["metadata"]["name"] = claim
    for workload in (job, deployment):
        workload["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = claim

    def populate(tools_ref, docs=()):
        name = unique("shim-populate")
        pod = pod_from(job, name)
        pod["spec"]["containers"][0]["image"] = tools_ref
        kube.play([*docs, pod])
        assert kube.wait_exit(f"{name}-populate", timeout=180) == 0, kube.logs(f"{name}-populate")
        lines = kube.logs(f"{name}-populate").split()
        paths = [p for p in lines if p.startswith("/pvc/")]
        assert [Path(p).name for p in paths] == ["shim-linux-amd64", "shim-linux-arm64"], lines
        return Path(paths[0]).parent.name

    v1 = populate(tools["amd64"], [pvc])
    root = volume_path(claim)
    before = snapshot(root / v1)
    assert set(before) == {"shim-linux-amd64", "shim-linux-arm64"}

    # A consumer pod runs version 1 from the read-only volume and keeps running.
    consumer = unique("shim-consumer")
    pod = pod_from(deployment, consumer)
    app = pod["spec"]["containers"][0]
    app["image"] = image("scratch", "amd64")
    app["command"] = [f"/shim/{v1}/shim-linux-amd64", "--", "/bin/sh", "-c",
                      "touch /shim/x 2>/dev/null && echo volume=writable || echo volume=read-only; "
                      "echo consumer-started; exec sleep 300"]
    kube.play([pod])
    kube.wait_log(f"{consumer}-app", "consumer-started", timeout=120)
    assert "volume=read-only" in kube.logs(f"{consumer}-app")

    # Version 2 is populated next to it while it runs.
    v2 = populate(tools_v2["amd64"])
    assert v2 != v1 and v1.split("-")[0] == v2.split("-")[0]
    assert kube.state(f"{consumer}-app")[0] == "running"
    assert snapshot(root / v1) == before
    listed = run([root / v1 / "shim-linux-amd64", "install", "--list", root]).stdout.splitlines()
    assert listed == sorted(f"{v} shim-linux-amd64 shim-linux-arm64" for v in (v1, v2))
