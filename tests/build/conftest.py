"""Build tier: the frozen binaries in real containers, and reproducibility.

`binary(arch)` returns dist/shim-linux-ARCH, building it with scripts/build when
it is missing or older than shim/ or build/ (about 10 s per arch; arm64 is
cross-compiled).  SHIM_BIN_AMD64 / SHIM_BIN_ARM64 point at a prebuilt binary
instead.  Images come from scripts/images (cached under SHIM_CACHE).
"""

import os
import subprocess
import types
from pathlib import Path

import pytest

from support import REPO, require_tool  # noqa: E402  (tests/ is on sys.path)

BUILD_TIMEOUT = 900
IMAGES_TIMEOUT = 1200


def pytest_configure(config):
    config.addinivalue_line("markers", "build: builds frozen binaries (minutes)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "build" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.build)
            item.add_marker(pytest.mark.binary)


def _newest_input():
    newest = 0.0
    for top in ("shim", "build"):
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def run_build(*args, cwd=REPO, env=None):
    proc = subprocess.run([str(Path(cwd) / "scripts/build"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL, env=env)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build {' '.join(args)} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return proc


@pytest.fixture(name="run_build", scope="session")
def run_build_fixture():
    """run_build(*args, cwd=REPO, env=None): scripts/build, failing the test on error."""
    require_tool("gcc")
    return run_build


@pytest.fixture(scope="session")
def saved_build(tmp_path_factory):
    """One clone of HEAD built with `--arch all --save-inputs` (shared by the inputs-archive and SBOM
    tests): a namespace with clone, dist (clone/dist), archive and inputs (the archive unpacked:
    .../shim-inputs)."""
    require_tool("gcc")
    top = tmp_path_factory.mktemp("saved")
    clone = top / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    archive = top / "inputs.tar"
    run_build("--arch", "all", "--save-inputs", str(archive), cwd=clone)
    unpacked = top / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(unpacked)], check=True)
    return types.SimpleNamespace(clone=clone, dist=clone / "dist", archive=archive, inputs=unpacked / "shim-inputs")


@pytest.fixture(scope="session")
def binary():
    """binary(arch) -> path of the frozen shim for arch (built once if stale)."""
    require_tool("gcc")
    cache = {}

    def get(arch):
        if arch not in cache:
            given = os.environ.get(f"SHIM_BIN_{arch.upper()}")
            if given:
                cache[arch] = Path(given).resolve()
            else:
                path = REPO / "dist" / f"shim-linux-{arch}"
                if not path.exists() or path.stat().st_mtime < _newest_input():
                    run_build("--arch", arch)
                cache[arch] = path
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def image():
    """image(name, arch) -> local image reference, built by scripts/images once."""
    require_tool("podman")
    seen = {}

    def get(name, arch):
        if (name, arch) not in seen:
            proc = subprocess.run([str(REPO / "scripts/images"), "--arch", arch, name],
                                  capture_output=True, text=True, timeout=IMAGES_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                pytest.fail(f"scripts/images --arch {arch} {name} failed:\n{proc.stderr[-2000:]}",
                            pytrace=False)
            seen[(name, arch)] = proc.stdout.split()[0]
        return seen[(name, arch)]

    return get


@pytest.fixture(scope="session")
def busybox(image, tmp_path_factory):
    """busybox(arch) -> host path of the static busybox of that arch (from the scratch image)."""
    found = {}

    def get(arch):
        if arch not in found:
            ref = image("scratch", arch)
            out = tmp_path_factory.mktemp(f"busybox-{arch}") / "busybox"
            name = subprocess.run(["podman", "create", "--arch", arch, ref, "/bin/busybox"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            try:
                subprocess.run(["podman", "cp", f"{name}:/bin/busybox", str(out)], check=True,
                               capture_output=True)
            finally:
                subprocess.run(["podman", "rm", "-f", name], capture_output=True)
            os.chmod(out, 0o755)
            found[arch] = out
        return found[arch]

    return get
