"""Tools tier: the tools image, `shim install` in containers and pods, publishing.

Everything runs the real dist/ binaries (built with `scripts/build --arch all`
when missing) in real containers: podman, `podman kube play`, skopeo and a
docker-registry on loopback.  arm64 runs through qemu-user (scripts/setup
registers it).  Every image, pod and volume a test makes is removed afterwards.
"""

import importlib.util
import json
import os
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import yaml


def _root_conftest():
    # tests/conftest.py by path: pytest imports every conftest.py as "conftest".
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("shim_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _root_conftest()
REPO, require_tool = _root.REPO, _root.require_tool

DIST = REPO / "dist"
ARCHES = ("amd64", "arm64")
BUILD_TIMEOUT = 1800
IMAGES_TIMEOUT = 900
RUN_TIMEOUT = 120
KINDS = ("scratch", "musl", "debian-slim", "distroless")


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


# -- the artifacts under test -------------------------------------------------------

@pytest.fixture(scope="session")
def dist():
    """{arch: Path} of dist/shim-linux-ARCH; built with scripts/build --arch all when missing."""
    paths = {arch: DIST / f"shim-linux-{arch}" for arch in ARCHES}
    if not all(p.is_file() for p in paths.values()):
        run([REPO / "scripts/build", "--arch", "all"], timeout=BUILD_TIMEOUT)
    for arch, path in paths.items():
        assert path.is_file(), f"scripts/build --arch all did not produce {path}"
    return paths


def build_archive(dist_dir, out, env=None):
    """tools-image/build.py -> (archive path, index digest)."""
    proc = run(["/usr/bin/python3", REPO / "tools-image/build.py", "--dist", dist_dir, "--out", out],
               env={**os.environ, **(env or {})}, timeout=600)
    path, digest = proc.stdout.split()
    return Path(path), digest


@pytest.fixture(scope="session")
def archive(dist, tmp_path_factory):
    """A fresh OCI archive built from dist/: (path, index digest)."""
    return build_archive(DIST, tmp_path_factory.mktemp("oci") / "shim-tools.oci.tar")


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


def image_files(ref):
    """{path: (mode, size, sha256)} of an image's filesystem, via podman export."""
    import hashlib

    cid = podman("create", ref, "x").stdout.strip()
    try:
        data = subprocess.run(["podman", "export", cid], capture_output=True, check=True, timeout=300).stdout
    finally:
        podman("rm", "-f", cid, check=False)
    import io

    files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile():
                content = tar.extractfile(member).read()
                files[member.name] = (member.mode, member.size, hashlib.sha256(content).hexdigest())
    return files


def image_config(ref):
    return json.loads(podman("image", "inspect", ref).stdout)[0]


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


def load_manifests(name):
    return list(yaml.safe_load_all((REPO / "deploy" / name).read_text()))


def pod_from(workload, name):
    """The Pod a Deployment or Job would create, as `podman kube play` input (restartPolicy Never)."""
    spec = json.loads(json.dumps(workload["spec"]["template"]["spec"]))
    spec["restartPolicy"] = "Never"
    spec.pop("nodeSelector", None)  # one node here; the arch is chosen by the image
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


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
