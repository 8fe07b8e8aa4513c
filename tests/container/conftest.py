"""Container tier: the shim as PID 1 of a real podman container.

A container image has no Python of its own, so the source tree runs inside the
`debian-servers` image (python3, redis-server, nginx) with the repo bind-mounted
read-only at /src.  The same tests also run the frozen binary (mounted at /shim)
when dist/ holds one built from the current sources, or only SHIM_BIN when set.
Images are built locally by scripts/images (cached), so these tests work from a
fresh clone.  Every container gets a unique name and is
removed afterwards, whatever the test did.
"""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from shim.util.platforms import running_arch
from support import REPO, require_tool  # noqa: E402  (tests/ is on sys.path)

# Generous: the first call of a session may debootstrap an image (about 1-4 min).
IMAGES_TIMEOUT = 900
RUN_TIMEOUT = 60
ELF_MACHINES = {0x3E: "amd64", 0xB7: "arm64"}


def _arch():
    """The arch of SHIM_BIN (so an arm64 binary runs in arm64 images), else the host's."""
    binary = os.environ.get("SHIM_BIN")
    if binary:
        with open(binary, "rb") as f:
            head = f.read(20)
        if head[:4] == b"\x7fELF":
            return ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), "amd64")
    return running_arch()


ARCH = _arch()


def _images(*names, arch=ARCH):
    """Ensure images exist (scripts/images is a no-op when cached); return their refs."""
    require_tool("podman")
    require_tool("debootstrap")
    proc = subprocess.run([str(REPO / "scripts/images"), "--arch", arch, *names],
                          capture_output=True, text=True, timeout=IMAGES_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"scripts/images {' '.join(names)} failed:\n{proc.stderr[-2000:]}", pytrace=False)
    return proc.stdout.split()


@pytest.fixture(scope="session")
def image():
    """image(name, arch='amd64') -> reference; builds once per session if missing."""
    seen = {}

    def get(name, arch=ARCH):
        if (name, arch) not in seen:
            seen[(name, arch)] = _images(name, arch=arch)[0]
        return seen[(name, arch)]

    return get


@pytest.fixture(scope="session")
def servers_image(image):
    return image("debian-servers")


def _fresh_dist_binary():
    """dist/shim-linux-ARCH when built from the current sources, else None."""
    path = REPO / "dist" / f"shim-linux-{ARCH}"
    if not path.exists():
        return None
    built = path.stat().st_mtime
    sources = [p for p in (REPO / "shim").rglob("*.py") if "__pycache__" not in p.parts]
    return path if all(p.stat().st_mtime <= built for p in sources) else None


def shim_flavors():
    """Which shims the runtime tests run: SHIM_BIN alone if set; else the source tree, and
    also the frozen binary when scripts/build has made one from these sources (the build
    tier runs before this one in scripts/test)."""
    if os.environ.get("SHIM_BIN"):
        return ["bin"]
    return ["src", "bin"] if _fresh_dist_binary() else ["src"]


def pytest_generate_tests(metafunc):
    if "shim_flavor" in metafunc.fixturenames:
        metafunc.parametrize("shim_flavor", shim_flavors())


def shim_in_container(flavor="src"):
    """(podman run arguments, argv prefix) that run the shim under test in a container."""
    if flavor == "bin":
        path = Path(os.environ.get("SHIM_BIN") or _fresh_dist_binary()).resolve()
        return ["-v", f"{path}:/shim:ro"], ["/shim"]
    return (["-v", f"{REPO}:/src:ro", "-e", "PYTHONPATH=/src", "-e", "PYTHONDONTWRITEBYTECODE=1"],
            ["python3", "-m", "shim"])


class Container:
    """One named podman container; `podman rm -f` on close."""

    def __init__(self, name):
        self.name = name

    def podman(self, *args, timeout=RUN_TIMEOUT, check=True):
        proc = subprocess.run(["podman", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def logs(self):
        proc = self.podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def wait_for_log(self, text, timeout=30):
        """Poll the logs until `text` appears (a readiness wait, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            if self.state() == "exited":
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in logs of {self.name} after {timeout}s:\n{self.logs()}")

    def state(self):
        return self.podman("inspect", "--format", "{{.State.Status}}", self.name,
                           check=False).stdout.strip()

    def exit_code(self):
        return int(self.podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def wait(self, timeout=RUN_TIMEOUT):
        return int(self.podman("wait", self.name, timeout=timeout).stdout.strip().splitlines()[-1])

    def stop(self, grace=10):
        self.podman("stop", "-t", str(grace), self.name, timeout=grace + 30)

    def close(self):
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def shim_container(servers_image, tmp_path, shim_flavor):
    """run(shim_args, command, detach=False, image=None, podman_args=()) -> (Container, proc).

    The host directory tmp_path is mounted at /out for markers and data.
    """
    require_tool("podman")
    made = []
    mount_args, prefix = shim_in_container(shim_flavor)

    def run(shim_args, command, detach=False, image=None, podman_args=(), timeout=RUN_TIMEOUT):
        box = Container(f"shim-test-{uuid.uuid4().hex[:12]}")
        made.append(box)
        argv = ["run", "--name", box.name, *(["-d"] if detach else []),
                "-v", f"{tmp_path}:/out", *mount_args, *podman_args,
                image or servers_image, *prefix, *shim_args, "--", *command]
        proc = box.podman(*argv, timeout=timeout, check=detach)
        return box, proc

    yield run
    for box in made:
        box.close()


@pytest.fixture
def shim_entrypoint(shim_flavor):
    """(podman run arguments, argv prefix) of the shim under test, for images whose
    ENTRYPOINT is shim (`ENTRYPOINT <prefix> ...`)."""
    return shim_in_container(shim_flavor)


@pytest.fixture
def new_container():
    """new_container() -> a named Container, removed after the test."""
    made = []

    def new():
        box = Container(f"shim-test-{uuid.uuid4().hex[:12]}")
        made.append(box)
        return box

    yield new
    for box in made:
        box.close()
