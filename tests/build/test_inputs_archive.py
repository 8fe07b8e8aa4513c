"""Rebuilding a release later: `--save-inputs FILE`, then `--inputs FILE` offline, the same bytes.

One clone of HEAD builds both arches and saves its inputs.  The rebuild runs
from an empty SHIM_CACHE inside a network namespace of our own with no route
anywhere (`ip netns add`: only a loopback that is down), so any attempt to
reach a package mirror or PyPI fails; its binaries, SHA256SUMS and tools image
must equal the first build's.  The archive's relink kit (glibc's LGPL) relinks
each arch's binary byte for byte, and a damaged archive is refused in one line.
"""

import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from support import require_tool

# Builds from scratch (clones, empty caches, both arches): minutes on a loaded 2-core
# machine, longer than the suite's 300 s default (fixture set-up counts too).
pytestmark = pytest.mark.timeout(900)

TIMEOUT = 900
ARCHES = ("amd64", "arm64")


def _build(clone, *args, env=None, prefix=()):
    return subprocess.run([*prefix, str(clone / "scripts/build"), *args], cwd=clone, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, env=env or dict(os.environ))


@pytest.fixture(scope="module")
def saved(saved_build, tmp_path_factory):
    """(clone, archive, top): top/dist1 is a copy of the saving build's dist/ (tests/build/conftest.py)."""
    top = tmp_path_factory.mktemp("inputs")
    shutil.copytree(saved_build.dist, top / "dist1")
    return saved_build.clone, saved_build.archive, top


@pytest.fixture()
def no_network_namespace():
    """`ip netns exec NAME` prefix of a fresh namespace without any route (removed afterwards)."""
    require_tool("ip")
    name = f"shim-inputs-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_rebuild_from_saved_inputs_offline_is_identical(saved, no_network_namespace, tmp_path):
    clone, archive, top = saved
    # The namespace really is cut off: connecting anywhere off-host fails at once.
    probe = subprocess.run([*no_network_namespace, "/usr/bin/python3", "-c",
                            "import socket,sys\ntry: socket.create_connection(('192.0.2.1', 80), 5)\n"
                            "except OSError as e: sys.exit(e.errno)"], timeout=30)
    assert probe.returncode == errno.ENETUNREACH

    env = {**os.environ, "SHIM_CACHE": str(tmp_path / "empty-cache")}
    proc = _build(clone, "--arch", "all", "--inputs", str(archive), "--dist", str(top / "dist2"),
                  "--work", str(tmp_path / "work"), env=env, prefix=no_network_namespace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fetching" not in proc.stderr  # every file came from the archive
    for name in ("SHA256SUMS", "shim-linux-amd64", "shim-linux-arm64", "shim-tools.oci.tar"):
        first, second = (top / d / name for d in ("dist1", "dist2"))
        assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest(), name

    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("shim-inputs/MANIFEST.json"))
        effective = tar.extractfile("shim-inputs/inputs.lock").read().decode()
    for arch in ARCHES:
        binary = (top / "dist1" / f"shim-linux-{arch}").read_bytes()
        assert manifest["binaries"][f"shim-linux-{arch}"] == hashlib.sha256(binary).hexdigest()
    # The effective lock names exactly the files the archive holds.
    listed = {f"files/{line.split()[4]}-{line.split()[5] if len(line.split()) > 5 else line.split()[1] + '.deb'}"
              for line in effective.splitlines() if line and not line.startswith("#")}
    assert listed == {name for name in manifest["files"] if name.startswith("files/")}


def test_relink_kit_relinks_the_same_binary(saved, tmp_path):
    """LGPL-2.1 s.6: object files + the archive's .debs relink each binary (here unchanged: same bytes)."""
    clone, archive, top = saved
    subprocess.run(["tar", "-xf", str(archive), "-C", str(tmp_path)], check=True)
    kit = tmp_path / "shim-inputs"
    lock_lines = [line.split() for line in (kit / "inputs.lock").read_text().splitlines()
                  if line and not line.startswith("#")]
    for arch in ARCHES:
        sysroot = tmp_path / f"sysroot-{arch}"
        for kind, name, deb_arch, _version, sha, *_ in lock_lines:
            if kind == "deb" and deb_arch in (arch, "all"):
                subprocess.run(["dpkg-deb", "-x", str(kit / "files" / f"{sha}-{name}.deb"), str(sysroot)], check=True)
        out = tmp_path / f"relinked-{arch}"
        subprocess.run([str(kit / "relink" / arch / "link.sh"), str(out)], check=True, capture_output=True,
                       env={**os.environ, "SYSROOT": str(sysroot)}, timeout=300)
        assert out.read_bytes() == (top / "dist1" / f"shim-linux-{arch}").read_bytes(), arch


def test_glibcs_own_source_travels_with_the_relink_kit(saved, tmp_path):
    """LGPL-2.1 s.6 also asks for the library's source: Debian's glibc source package at the
    libc6-dev version the binaries linked, with its hash in the manifest."""
    clone, archive, top = saved
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("shim-inputs/MANIFEST.json"))
        names = tar.getnames()
        effective = tar.extractfile("shim-inputs/inputs.lock").read().decode()
    version = next(line.split()[3] for line in effective.splitlines()
                   if line.startswith("deb libc6-dev "))
    sources = [n for n in names if n.startswith("shim-inputs/source/glibc/")]
    assert any(n.endswith(".orig.tar.xz") for n in sources), sources
    assert f"shim-inputs/source/glibc/glibc_{version.split(':')[-1]}.dsc" in sources or \
        manifest.get("sources_missing"), sources  # a vanished .dsc is named, never silent
    for name in sources:
        assert len(manifest["files"][name.split("/", 1)[1]]) == 64  # its sha256


def test_a_damaged_archive_is_refused_in_one_line(saved, tmp_path):
    clone, archive, top = saved
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            if data and member.name.startswith("shim-inputs/files/") and "setproctitle" in member.name:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    env = {**os.environ, "SHIM_CACHE": str(tmp_path / "cache")}
    proc = _build(clone, "--arch", "amd64", "--inputs", str(damaged), "--dist", str(tmp_path / "dist"), env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("shim:")]
    assert len(errors) == 1 and errors[0].startswith(f"shim: build: verify inputs archive {damaged}: "), errors
    assert "setproctitle" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "dist/shim-linux-amd64").exists()
