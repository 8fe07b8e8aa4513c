"""Issue 18 in real containers, the frozen binary as PID 1: it drops the delegate to a user
in scratch (a number, no passwd), distroless (`nonroot` from its passwd), debian-slim (a
named user with supplementary groups from the image's files), with a read-only root, and
under `podman kube play` a root container drops through its runtime profile.

The images have no `cat` or `id` of their own where it matters (distroless): the host's
static busybox is mounted as /bb and reads the delegate's /proc/self/status.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
from conftest import _fresh_dist_binary

from support import missing, require_tool

STATUS = ["/busybox", "sh", "-c", "/busybox grep -E '^(Uid|Gid|Groups|CapEff|CapAmb|NoNewPrivs):' "
          "/proc/self/status; /busybox id -un 2>/dev/null; echo HOME=$HOME"]


@pytest.fixture
def binary():
    path = os.environ.get("SHIM_BIN") or _fresh_dist_binary()
    if not path:
        missing("a frozen binary built from these sources (scripts/build --arch amd64)")
    return str(os.path.realpath(path))


@pytest.fixture
def busybox():
    path = shutil.which("busybox")
    if path is None:
        missing("tool 'busybox' (busybox-static)")
    return os.path.realpath(path)


def _podman(*args, timeout=120, check=True):
    require_tool("podman")
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))}: exit {proc.returncode}: "
                             f"{proc.stderr[-2000:]}")
    return proc


def _run(image, binary, busybox, shim_args, command=STATUS, podman_args=()):
    return _podman("run", "--rm", "-v", f"{binary}:/shim:ro", "-v", f"{busybox}:/busybox:ro",
                   *podman_args, image, "/shim", *shim_args, "--", *command, check=False)


def _status(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
        elif line.startswith("HOME="):
            out["HOME"] = line[5:]
        elif line.strip():
            out["name"] = line.strip()
    return out


def test_scratch_numeric_user_without_passwd(image, binary, busybox):
    r = _run(image("scratch"), binary, busybox, ["--user", "4321:4321", "--rlimit",
                                                 "nofile=256", "--cap-keep", "NET_BIND_SERVICE"])
    assert r.returncode == 0, r.stderr
    s = _status(r.stdout)
    assert s["Uid"].split() == ["4321"] * 4 and s["Groups"] == "4321" and s["HOME"] == "/"
    assert int(s["CapAmb"], 16) == 1 << 10


def test_distroless_nonroot_by_name(image, binary, busybox):
    r = _run(image("distroless"), binary, busybox, ["--user", "nonroot", "--no-new-privileges"])
    assert r.returncode == 0, r.stderr
    s = _status(r.stdout)
    assert s["Uid"].split()[0] == "65532" and s["Gid"].split()[0] == "65532"
    assert s["HOME"] == "/home/nonroot" and s["NoNewPrivs"] == "1"
    assert int(s["CapEff"], 16) == 0


def test_debian_slim_named_user_with_supplementary_groups_read_only_root(image, binary,
                                                                         busybox, tmp_path):
    # The image's own account files, with an app user in two extra groups.
    base = _podman("run", "--rm", image("debian-slim"), "cat", "/etc/passwd", "/etc/group")
    assert base.returncode == 0
    passwd = _podman("run", "--rm", image("debian-slim"), "cat", "/etc/passwd").stdout
    group = _podman("run", "--rm", image("debian-slim"), "cat", "/etc/group").stdout
    (tmp_path / "passwd").write_text(passwd + "app:x:4321:4321:App:/home/app:/bin/sh\n")
    (tmp_path / "group").write_text(
        "".join(line + (",app" if line.split(":")[0] in ("audio", "video") and
                        not line.endswith(":") else ("app" if line.split(":")[0] in
                                                      ("audio", "video") else "")) + "\n"
                for line in group.splitlines()) + "app:x:4321:\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("x")
    r = _run(image("debian-slim"), binary, busybox,
             ["--user", "app", "--own", "/data", "--umask", "077"],
             command=["sh", "-c", "grep -E '^(Uid|Groups):' /proc/self/status; id -un; "
                                  "echo HOME=$HOME; touch /data/new; stat -c %a /data/new"],
             podman_args=["--read-only", "-v", f"{tmp_path}/passwd:/etc/passwd:ro",
                          "-v", f"{tmp_path}/group:/etc/group:ro", "-v", f"{tmp_path}/data:/data"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    s = _status("\n".join(lines[:4]))
    audio = [x for x in group.splitlines() if x.startswith("audio:")][0].split(":")[2]
    video = [x for x in group.splitlines() if x.startswith("video:")][0].split(":")[2]
    assert s["Uid"].split()[0] == "4321"
    assert sorted(s["Groups"].split()) == sorted(["4321", audio, video])
    assert s["name"] == "app" and s["HOME"] == "/home/app"
    assert lines[-1] == "600"  # umask 077
    assert os.stat(tmp_path / "data" / "f").st_uid == 4321


def test_kube_play_root_container_drops_through_its_runtime_profile(tmp_path, binary, busybox,
                                                                   image):
    pod = f"shim-id-{uuid.uuid4().hex[:8]}"
    name = f"{pod}-app"
    config = tmp_path / "shim.json"
    config.write_text(json.dumps({"profiles": {
        "kubernetes": {"identity": {"user": "4321:4321", "cap_keep": ["NET_BIND_SERVICE"],
                                    "rlimit": ["nofile=512"]}},
        "sagemaker-training": {"identity": {}}}}))
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {
        "restartPolicy": "Never",
        "containers": [{
            "name": "app", "image": image("scratch"),
            "securityContext": {"runAsUser": 0, "readOnlyRootFilesystem": True},
            # What the kubelet puts in every container's environment: shim detects Kubernetes.
            "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "10.96.0.1"},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
                    {"name": "SHIM_CONFIG", "value": "/etc/shim/shim.json"}],
            "command": ["/shim", "--", "/busybox", "sh", "-c",
                        "/busybox grep -E '^(Uid|CapAmb):' /proc/self/status; ulimit -n"],
            "volumeMounts": [{"name": "shim", "mountPath": "/shim", "readOnly": True},
                             {"name": "bb", "mountPath": "/busybox", "readOnly": True},
                             {"name": "cfg", "mountPath": "/etc/shim/shim.json", "readOnly": True}]}],
        "volumes": [{"name": "shim", "hostPath": {"path": binary, "type": "File"}},
                    {"name": "bb", "hostPath": {"path": busybox, "type": "File"}},
                    {"name": "cfg", "hostPath": {"path": str(config), "type": "File"}}]}}
    path = tmp_path / "pod.yaml"
    path.write_text(json.dumps(doc))
    _podman("kube", "play", str(path))
    try:
        deadline = time.monotonic() + 120
        state = ""
        while time.monotonic() < deadline:  # a readiness wait on podman (no event to await)
            state = _podman("inspect", "--format", "{{.State.Status}}", name,
                            check=False).stdout.strip()
            if state in ("exited", "stopped"):
                break
            time.sleep(0.2)
        logs = _podman("logs", name, check=False)
        out = _status(logs.stdout)
        assert out.get("Uid", "").split()[:1] == ["4321"], logs.stdout + logs.stderr
        assert int(out["CapAmb"], 16) == 1 << 10
        assert logs.stdout.splitlines()[-1] == "512"
    finally:
        _podman("kube", "down", str(path), check=False)
