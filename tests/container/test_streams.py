"""Streams and telemetry with the frozen binary as PID 1 of real containers: read-only
root filesystem, uid 65534.

Two containers of one pod under `podman kube play` pipe 100 MiB through each other
(--stdout-to tcp-listen:// in one, --stdin-from tcp:// in the other) byte-exact with
half-close; a single container captures, masks and streams to a sink, writes its
report, and ends on a lost heartbeat with exit 116.
"""

import hashlib
import json
import os
import subprocess
import time
import uuid

import pytest
from conftest import _fresh_dist_binary

from shim.errors import EXIT_HEARTBEAT_LOST
from support import missing, require_tool

NOBODY = 65534


@pytest.fixture
def binary():
    path = os.environ.get("SHIM_BIN") or _fresh_dist_binary()
    if not path:
        missing("a frozen binary built from these sources (scripts/build --arch amd64)")
    return str(os.path.realpath(path))


@pytest.fixture
def scratch(image):
    return image("scratch")


def _podman(*args, timeout=300, check=True):
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))}: exit {proc.returncode}: "
                             f"{proc.stderr[-2000:]}")
    return proc


def _wait_exited(name, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name,
                      check=False).stdout.split()
        if out and out[0] in ("exited", "stopped"):
            return int(out[1])
        time.sleep(0.2)
    raise AssertionError(f"{name} did not exit within {timeout}s:\n{_logs(name)}")


def _logs(name):
    proc = _podman("logs", name, check=False)
    return proc.stdout + proc.stderr


def _writable_dir(path):
    path.mkdir(exist_ok=True)
    os.chmod(path, 0o777)  # uid 65534 writes here
    return str(path)


SECURE = {"readOnlyRootFilesystem": True, "runAsUser": NOBODY, "runAsGroup": NOBODY,
          "allowPrivilegeEscalation": False}
MOUNTS = [{"name": "shim", "mountPath": "/shim", "readOnly": True},
          {"name": "data", "mountPath": "/data", "readOnly": True},
          {"name": "out", "mountPath": "/out"}]
SOURCE = ["--log-sink", "file:///out/source.jsonl", "--report", "/out/report.json",
          "--", "sh", "-c", "cat /data/data.bin; exec 1>&-; sleep 30"]
DEST = ["--relay-timeout", "60s", "--", "sha256sum"]


def _relay_data(tmp_path):
    """(data dir, sha256, out dir): 100 MiB of random bytes readable by uid 65534."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = os.urandom(100 << 20)
    (data_dir / "data.bin").write_bytes(data)
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "data.bin", 0o644)
    return str(data_dir), hashlib.sha256(data).hexdigest(), _writable_dir(tmp_path / "out")


def _pod(name, image, containers, binary, data_dir, out):
    """A Pod document: each (name, shim args) runs /shim as PID 1, read-only, uid 65534."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": cname, "image": image, "securityContext": SECURE,
                        "volumeMounts": MOUNTS, "command": ["/shim", *args]}
                       for cname, args in containers],
        "volumes": [{"name": "shim", "hostPath": {"path": binary, "type": "File"}},
                    {"name": "data", "hostPath": {"path": data_dir, "type": "Directory"}},
                    {"name": "out", "hostPath": {"path": out, "type": "Directory"}}]}}


def _play(tmp_path, doc, *args):
    path = tmp_path / f"{doc['metadata']['name']}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    _podman("kube", "play", *args, str(path))
    return path


def test_two_containers_relay_100_mib_under_kube_play(tmp_path, binary, scratch):
    require_tool("podman")
    require_tool("catatonit")  # podman builds its pause image from it
    data_dir, digest, out = _relay_data(tmp_path)
    pod = f"shim-relay-{uuid.uuid4().hex[:8]}"
    doc = _pod(pod, scratch, [("source", ["--stdout-to", "tcp-listen://127.0.0.1:9000", *SOURCE]),
                              ("dest", ["--stdin-from", "tcp://127.0.0.1:9000", *DEST])],
               binary, data_dir, out)
    path = tmp_path / "pod.yaml"
    try:
        path = _play(tmp_path, doc)
        t0 = time.monotonic()
        assert _wait_exited(f"{pod}-dest") == 0, _logs(f"{pod}-dest")
        # Half-close: the digest came when the source closed its stdout, not when it exited.
        assert time.monotonic() - t0 < 25
        assert _logs(f"{pod}-dest").split()[0] == digest
        _podman("stop", "-t", "2", f"{pod}-source", check=False)
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert report["delegate"] == {"argv0": "sh"}
    finally:
        _podman("kube", "down", str(path), check=False)


def test_two_pods_relay_100_mib_over_a_network(tmp_path, binary, scratch):
    """Two pods on a podman network this test creates: the source listens on the pod's
    address, the destination connects to it (retrying until it listens)."""
    require_tool("podman")
    require_tool("catatonit")
    data_dir, digest, out = _relay_data(tmp_path)
    tag = uuid.uuid4().hex[:8]
    net, src, dst = f"shim-relay-net-{tag}", f"shim-src-{tag}", f"shim-dst-{tag}"
    _podman("network", "create", net)
    paths = []
    try:
        paths.append(_play(tmp_path, _pod(src, scratch, [
            ("source", ["--stdout-to", "tcp-listen://:9000", *SOURCE])], binary, data_dir, out),
            "--network", net))
        ip = _podman("inspect", "--format",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                     f"{src}-source").stdout.strip()
        assert ip, "the source pod has no address"
        paths.append(_play(tmp_path, _pod(dst, scratch, [
            ("dest", ["--stdin-from", f"tcp://{ip}:9000", *DEST])], binary, data_dir, out),
            "--network", net))
        assert _wait_exited(f"{dst}-dest") == 0, _logs(f"{dst}-dest")
        assert _logs(f"{dst}-dest").split()[0] == digest
    finally:
        for path in reversed(paths):
            _podman("kube", "down", str(path), check=False)
        _podman("network", "rm", "-f", net, check=False)


def test_capture_mask_sink_report_and_lost_heartbeat_as_pid1(tmp_path, binary, scratch):
    require_tool("podman")
    out = _writable_dir(tmp_path / "out")
    name = f"shim-streams-{uuid.uuid4().hex[:8]}"
    try:
        proc = _podman(
            "run", "--name", name, "--read-only", "--user", f"{NOBODY}:{NOBODY}",
            "-v", f"{binary}:/shim:ro", "-v", f"{out}:/out", "-e", "TOKEN=tok-123456",
            scratch, "/shim", "--mask-env", "TOKEN", "--log-sink", "file:///out/sink.jsonl",
            "--report", "/out/report.json", "--heartbeat", "tcp://127.0.0.1:9",
            "--heartbeat-interval", "200ms", "--heartbeat-failures", "2", "--grace", "1s",
            "--", "sh", "-c", "echo parent=$PPID token=$TOKEN; printf 'tok-12'; sleep 0.01; "
                              "echo 3456 split; sleep 60", timeout=120, check=False)
        assert proc.returncode == EXIT_HEARTBEAT_LOST, proc.stderr
        assert "tok-123456" not in proc.stdout
        assert proc.stdout.splitlines()[0] == "parent=1 token=***"  # shim is PID 1
        assert proc.stdout.splitlines()[1] == "*** split"
        sink = (tmp_path / "out" / "sink.jsonl").read_text()
        assert "tok-123456" not in sink
        assert [json.loads(x)["line"] for x in sink.splitlines()][:2] == \
            ["parent=1 token=***", "*** split"]
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert report["reason"] == "heartbeat-lost" and report["exit_code"] == EXIT_HEARTBEAT_LOST
        # The platform step's decision, with its evidence (a scratch image has no
        # /run/.containerenv, so "local" is what the markers allow here).
        assert report["runtime"]["name"] and report["runtime"]["evidence"]
    finally:
        _podman("rm", "-f", "-t", "0", name, check=False)
