"""The comparison freezers stay buildable (issue #3): nuitka and pyinstaller+staticx.

Each is built for the host arch into a temporary dist and run through the
basics.  The Nuitka build must also start in a scratch image as PID 1 with no
writable /tmp (it is static too); PyInstaller+staticx must not (the reason it
is not the default) - if that ever changes, docs/freeze.md is out of date.
First run on a fresh machine: ~3 min (pip installs the pinned tools, cached).
"""

import subprocess

import pytest

# Builds from scratch (clones, empty caches, nuitka): minutes on a loaded 2-core
# machine, longer than the suite's 300 s default (fixture set-up counts too).
pytestmark = pytest.mark.timeout(900)

RESTRICTED = ["--read-only", "--read-only-tmpfs=false", "--user", "65534:65534"]


@pytest.fixture(scope="module", params=["nuitka", "pyinstaller"])
def frozen(request, run_build, tmp_path_factory):
    dist = tmp_path_factory.mktemp(f"dist-{request.param}")
    work = tmp_path_factory.mktemp(f"work-{request.param}")
    run_build("--freezer", request.param, "--dist", str(dist), "--work", str(work))
    return request.param, dist / "shim-linux-amd64"


def test_runs_the_delegate(frozen):
    _, path = frozen
    assert subprocess.run([str(path), "--", "/bin/true"], timeout=120).returncode == 0
    proc = subprocess.run([str(path), "--", "/bin/sh", "-c", "exit 42"], timeout=120)
    assert proc.returncode == 42


def test_scratch_without_tmp(frozen, image, busybox):
    name, path = frozen
    proc = subprocess.run(["podman", "run", "--rm", *RESTRICTED, "-v", f"{path}:/shim:ro",
                           image("scratch", "amd64"), "/shim", "--", "/bin/busybox", "sh", "-c",
                           "exit 42"], capture_output=True, text=True, timeout=120)
    if name == "nuitka":
        assert proc.returncode == 42, proc.stderr
    else:
        assert proc.returncode != 42 and "/tmp" in proc.stderr, proc.stderr
