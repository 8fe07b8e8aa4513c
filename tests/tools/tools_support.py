"""Helpers of the tools tier (a unique module name: every tier has a conftest.py)."""

import io
import json
import os
import socket
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml

from support import REPO, require_tool  # noqa: E402  (tests/ is on sys.path)

DIST = REPO / "dist"
ARCHES = ("amd64", "arm64")
BUILD_TIMEOUT = 1800
IMAGES_TIMEOUT = 900
RUN_TIMEOUT = 120


def run(argv, timeout=RUN_TIMEOUT, check=True, **kw):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    return proc


def podman(*args, **kw):
    return run(["podman", *args], **kw)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_archive(dist_dir, out, env=None):
    """tools-image/build.py -> (archive path, index digest)."""
    proc = run(["/usr/bin/python3", REPO / "tools-image/build.py", "--dist", dist_dir, "--out", out],
               env={**os.environ, **(env or {})}, timeout=600)
    path, digest = proc.stdout.split()
    return Path(path), digest


def load_archive(path, ref_base):
    """Load each platform of an OCI archive as REF_BASE-ARCH, plus a local manifest list REF_BASE."""
    require_tool("skopeo")
    refs = {}
    for arch in ARCHES:
        refs[arch] = f"{ref_base}-{arch}"
        run(["skopeo", "copy", "-q", "--override-arch", arch, f"oci-archive:{path}",
             f"containers-storage:{refs[arch]}"], timeout=300)
    podman("manifest", "rm", ref_base, check=False)
    podman("manifest", "create", ref_base)
    for arch in ARCHES:
        podman("manifest", "add", ref_base, f"containers-storage:{refs[arch]}")
    refs["list"] = ref_base
    return refs


def unload(refs):
    podman("manifest", "rm", refs["list"], check=False)
    for arch in ARCHES:
        podman("rmi", "-f", refs[arch], check=False)


def image_files(ref):
    """{path: (mode, size, sha256)} of an image's filesystem, via podman export."""
    import hashlib

    cid = podman("create", ref, "x").stdout.strip()
    try:
        data = subprocess.run(["podman", "export", cid], capture_output=True, check=True, timeout=300).stdout
    finally:
        podman("rm", "-f", cid, check=False)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile():
                content = tar.extractfile(member).read()
                files[member.name] = (member.mode, member.size, hashlib.sha256(content).hexdigest())
    return files


def image_config(ref):
    return json.loads(podman("image", "inspect", ref).stdout)[0]


def load_manifests(name):
    return list(yaml.safe_load_all((REPO / "deploy" / name).read_text()))


def pod_from(workload, name):
    """The Pod a Deployment or Job would create, as `podman kube play` input (restartPolicy Never)."""
    spec = json.loads(json.dumps(workload["spec"]["template"]["spec"]))
    spec["restartPolicy"] = "Never"
    spec.pop("nodeSelector", None)  # one node here; the arch is chosen by the image
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
