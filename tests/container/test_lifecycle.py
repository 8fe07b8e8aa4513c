"""Issue 20 in real containers, with the frozen binary as PID 1.

A failing delegate under `podman kube play` (read-only root, uid 65534, an emptyDir debug
directory) pauses at its breakpoint; `podman exec … /shim exec-env -- env` (what `kubectl
exec` does) sees the delegate's environment; creating /debug/resume ends the pod with the
delegate's exit code.  `shim doctor` in the scratch image: read-only, uid 65534, and without
/proc.
"""

import json
import os
import subprocess
import time
import uuid

import pytest
from conftest import _fresh_dist_binary

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


def _podman(*args, timeout=120, check=True):
    require_tool("podman")
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))}: exit {proc.returncode}: "
                             f"{proc.stderr[-2000:]}")
    return proc


def _logs(name):
    proc = _podman("logs", name, check=False)
    return proc.stdout + proc.stderr


def _until(predicate, what, name, timeout=120):
    """Poll a container's state (a readiness wait on podman, which has no event to await here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen for {name} within {timeout}s:\n{_logs(name)}")


def _exit_code(name):
    out = _podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name,
                  check=False).stdout.split()
    return int(out[1]) if out and out[0] in ("exited", "stopped") else None


def test_breakpoint_on_failure_under_kube_play(tmp_path, binary, scratch):
    pod = f"shim-bp-{uuid.uuid4().hex[:8]}"
    name = f"{pod}-step"
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {
        "restartPolicy": "Never",
        "containers": [{
            "name": "step", "image": scratch,
            "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": NOBODY,
                                "runAsGroup": NOBODY, "allowPrivilegeEscalation": False},
            "env": [{"name": "SHIM_BREAKPOINT_ON_FAILURE", "value": "true"},
                    {"name": "SHIM_DEBUG_DIR", "value": "/debug"},
                    {"name": "SHIM_ENV", "value": "STEP_SETTING=from-shim"},
                    {"name": "FROM_POD", "value": "pod-value"}],
            "command": ["/shim", "--", "sh", "-c", "echo step failing; exit 3"],
            "volumeMounts": [{"name": "shim", "mountPath": "/shim", "readOnly": True},
                             {"name": "debug", "mountPath": "/debug"}]}],
        "volumes": [{"name": "shim", "hostPath": {"path": binary, "type": "File"}},
                    {"name": "debug", "emptyDir": {}}]}}
    path = tmp_path / "pod.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    _podman("kube", "play", str(path))
    try:
        _until(lambda: True if "breakpoint: the delegate failed" in _logs(name) else None,
               "the breakpoint message", name)
        assert _exit_code(name) is None  # paused: the container is still running
        record = json.loads(_podman("exec", name, "cat", "/debug/failed").stdout)
        assert record["exit_code"] == 3 and record["delegate_exit_code"] == 3
        env = _podman("exec", name, "/shim", "exec-env", "--", "env").stdout.splitlines()
        assert "STEP_SETTING=from-shim" in env and "FROM_POD=pod-value" in env
        _podman("exec", name, "touch", "/debug/resume")
        assert _until(lambda: _exit_code(name), "the exit", name) == 3
        assert "step failing" in _logs(name)
    finally:
        _podman("kube", "down", str(path), check=False)


def _doctor(image, binary, *podman_args, args=()):
    proc = _podman("run", "--rm", "-v", f"{binary}:/shim:ro", *podman_args, image, *args,
                   check=False)
    return proc


def test_doctor_in_scratch_read_only_as_nobody(binary, scratch):
    proc = _doctor(scratch, binary, "--read-only", "--read-only-tmpfs=false",
                   "--user", f"{NOBODY}:{NOBODY}",
                   args=["/shim", "doctor", "--format", "json", "--result-file", "/out/r.json"])
    assert proc.returncode == 118, proc.stderr  # the result file cannot be written
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["writable --result-file"]["status"] == "fail"
    assert "read-only" in checks["writable --result-file"]["detail"]
    assert checks["writable TMPDIR"]["status"] == "warn"  # no /tmp tmpfs, as in Kubernetes
    assert checks["trust store"]["status"] == "ok"  # the embedded bundle
    assert "uid 65534" in checks["privileges"]["detail"]
    assert checks["reaping"]["status"] == "ok" and "PID 1" in checks["reaping"]["detail"]
    assert checks["/proc"]["status"] == "ok"


def test_doctor_in_scratch_without_proc(binary, scratch):
    proc = _doctor(scratch, binary, "--cap-add", "SYS_ADMIN",
                   args=["sh", "-c", "umount -l /proc && exec /shim doctor"])
    assert proc.returncode == 118, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fail /proc: not mounted") and "fix: mount proc" in lines[0]
    assert any(line.startswith("warn privileges: unknown without /proc") for line in lines)
