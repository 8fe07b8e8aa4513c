"""Tools tier: the tools image, `shim install` in containers and pods, publishing.

Everything runs the real dist/ binaries (built with `scripts/build --arch all`
when missing) in real containers: podman, `podman kube play`, skopeo and a
docker-registry on loopback.  arm64 runs through qemu-user (scripts/setup
registers it).  Every image, pod and volume a test makes is removed afterwards.
Helpers live in tools_support.py (tests import it; `conftest` is ambiguous).
"""

import shutil
import socket
import subprocess
import time
import uuid

import pytest
import yaml

from tools_support import (
    ARCHES,
    BUILD_TIMEOUT,
    DIST,
    IMAGES_TIMEOUT,
    REPO,
    RUN_TIMEOUT,
    build_archive,
    free_port,
    load_archive,
    podman,
    require_tool,
    run,
    unload,
)

# -- the artifacts under test -------------------------------------------------------

@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """{arch: Path} of this session's copy of dist/shim-linux-ARCH (built with scripts/build --arch all
    when missing).  A copy, so a rebuild of dist/ during the run cannot mix two builds in one test."""
    paths = {arch: DIST / f"shim-linux-{arch}" for arch in ARCHES}
    if not all(p.is_file() for p in paths.values()):
        run([REPO / "scripts/build", "--arch", "all"], timeout=BUILD_TIMEOUT)
    snapshot = tmp_path_factory.mktemp("context") / "dist"
    snapshot.mkdir()
    for path in paths.values():
        assert path.is_file(), f"scripts/build --arch all did not produce {path}"
        shutil.copy2(path, snapshot / path.name)
        sbom = path.with_name(path.name + ".cdx.json")  # its SBOM, for Dockerfile.tools
        if sbom.is_file():
            shutil.copy2(sbom, snapshot / sbom.name)
    return {arch: snapshot / path.name for arch, path in paths.items()}


@pytest.fixture(scope="session")
def archive(dist, tmp_path_factory):
    """A fresh OCI archive built from the session's dist/ copy: (path, index digest)."""
    return build_archive(dist["amd64"].parent, tmp_path_factory.mktemp("oci") / "shim-tools.oci.tar")


@pytest.fixture(scope="session")
def tools(archive):
    """The daemonless tools image in local storage: {'amd64': ref, 'arm64': ref, 'list': ref}."""
    require_tool("podman")
    refs = load_archive(archive[0], f"localhost/shim-tools-test:{uuid.uuid4().hex[:8]}")
    yield refs
    unload(refs)


@pytest.fixture(scope="session")
def image():
    """image(kind, arch) -> localhost/shim-test/KIND:ARCH, built by scripts/images when missing."""
    seen = {}

    def get(kind, arch="amd64"):
        if (kind, arch) not in seen:
            require_tool("debootstrap")
            proc = run([REPO / "scripts/images", "--arch", arch, kind], timeout=IMAGES_TIMEOUT)
            seen[(kind, arch)] = proc.stdout.split()[0]
        return seen[(kind, arch)]

    return get


# -- pods --------------------------------------------------------------------------------

class Kube:
    """`podman kube play` of generated YAML; everything played is torn down at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.files = []
        self.volumes = set()

    def play(self, docs):
        require_tool("catatonit")  # podman builds its pause image from it
        path = self.workdir / f"kube-{len(self.files)}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        self.files.append(path)
        for doc in docs:
            if doc["kind"] == "PersistentVolumeClaim":
                self.volumes.add(doc["metadata"]["name"])
        podman("kube", "play", path, timeout=300)
        return path

    def state(self, container):
        out = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container).stdout.split()
        return out[0], int(out[1])

    def wait_exit(self, container, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, code = self.state(container)
            if status in ("exited", "stopped"):
                return code
            time.sleep(0.2)
        pytest.fail(f"{container} still {status} after {timeout}s; logs:\n{self.logs(container)}", pytrace=False)

    def wait_log(self, container, text, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs(container):
                return
            time.sleep(0.2)
        pytest.fail(f"{container} never logged {text!r}; logs:\n{self.logs(container)}", pytrace=False)

    def logs(self, container):
        proc = podman("logs", container, check=False)
        return proc.stdout + proc.stderr

    def down(self):
        for path in reversed(self.files):
            podman("kube", "down", path, check=False, timeout=120)
        for volume in self.volumes:
            podman("volume", "rm", "-f", volume, check=False)


@pytest.fixture
def kube(tmp_path):
    require_tool("podman")
    k = Kube(tmp_path)
    yield k
    k.down()


# -- a registry on loopback ------------------------------------------------------------------

@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1:<free port>, filesystem storage: 'host:port'."""
    binary = require_tool("docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not listen on {port}:\n{(root / 'registry.log').read_text()}",
                            pytrace=False)
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
