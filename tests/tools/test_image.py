"""The tools image: reproducible OCI archive, its contents, each platform installs its arch,
and Dockerfile.tools builds the same image with podman."""

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from shim.util.platforms import running_arch
from tools_support import (
    ARCHES,
    DIST,
    REPO,
    build_archive,
    image_config,
    image_files,
    podman,
    require_tool,
    run,
    unique,
)

LABELS = ("title", "version", "revision", "source", "created")


def read_layout(path):
    """{name: bytes} of an OCI archive, and the image index it names."""
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar}
        files = {name: tar.extractfile(m).read() for name, m in members.items() if m.isfile()}
    top = json.loads(files["index.json"])
    (entry,) = top["manifests"]
    index = files[f"blobs/sha256/{entry['digest'].split(':')[1]}"]
    return members, files, entry, json.loads(index)


def blob(files, digest):
    return files[f"blobs/sha256/{digest.split(':')[1]}"]


def test_building_twice_gives_the_same_bytes_and_index_digest(dist, tmp_path):
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    first, digest1 = build_archive(dist["amd64"].parent, tmp_path / "a.tar", env)
    second, digest2 = build_archive(dist["amd64"].parent, tmp_path / "b.tar", env)
    assert digest1 == digest2
    assert first.read_bytes() == second.read_bytes()
    _, _, entry, _ = read_layout(first)
    assert entry["digest"] == digest1
    # The epoch is an input: another one gives another index.
    _, digest3 = build_archive(dist["amd64"].parent, tmp_path / "c.tar", {"SOURCE_DATE_EPOCH": "1700000001"})
    assert digest3 != digest1


def test_archive_is_a_multi_arch_index_of_from_scratch_images(dist, tmp_path):
    epoch = 1700000000
    path, digest = build_archive(dist["amd64"].parent, tmp_path / "t.tar", {"SOURCE_DATE_EPOCH": str(epoch)})
    members, files, entry, index = read_layout(path)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert entry["mediaType"] == index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["annotations"]["org.opencontainers.image.ref.name"]
    # The outer tar is reproducible too: sorted, root-owned, fixed times.
    assert list(members) == sorted(members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {(0, 0, "", "", epoch)}
    platforms = {m["platform"]["architecture"]: m for m in index["manifests"]}
    assert set(platforms) == set(ARCHES)
    for arch, desc in platforms.items():
        assert desc["platform"]["os"] == "linux"
        manifest = json.loads(blob(files, desc["digest"]))
        config = json.loads(blob(files, manifest["config"]["digest"]))
        assert (config["architecture"], config["os"]) == (arch, "linux")
        assert config["config"]["Entrypoint"] == ["/shim", "install"]
        assert config["config"]["User"] == "65534:65534"
        labels = config["config"]["Labels"]
        for key in LABELS:
            assert labels[f"org.opencontainers.image.{key}"], key
        assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
        (layer,) = manifest["layers"]
        data = blob(files, layer["digest"])
        assert data[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
        raw = gzip.decompress(data)
        assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            entries = {m.name: (m, tar.extractfile(m).read()) for m in tar}
        other = [a for a in ARCHES if a != arch]
        sboms = [f"shim-linux-{a}.cdx.json" for a in ARCHES]  # issue 15 (tests/build/test_sbom.py checks them)
        assert list(entries) == sorted(["shim"] + [f"shim-linux-{a}" for a in other] + sboms)
        assert entries["shim"][1] == dist[arch].read_bytes()
        for a in other:
            assert entries[f"shim-linux-{a}"][1] == dist[a].read_bytes()
        for name, (member, _) in entries.items():
            mode = 0o644 if name in sboms else 0o755
            assert (member.mode, member.uid, member.gid, member.mtime) == (mode, 0, 0, epoch)


def test_scripts_build_made_the_archive_from_the_same_binaries(dist, tmp_path):
    """scripts/build writes dist/shim-tools.oci.tar as part of the main job, from the binaries next to it."""
    made = DIST / "shim-tools.oci.tar"
    assert made.is_file(), "scripts/build --arch all must write dist/shim-tools.oci.tar"
    fresh, _ = build_archive(DIST, tmp_path / "fresh.tar")
    layers = []
    for path in (made, fresh):
        _, files, _, index = read_layout(path)
        layers.append(sorted(json.loads(blob(files, m["digest"]))["layers"][0]["digest"] for m in index["manifests"]))
    assert layers[0] == layers[1], "dist/shim-tools.oci.tar is stale: rebuild with scripts/build --arch all"


@pytest.mark.parametrize("arch", ARCHES)
def test_each_platform_installs_its_own_arch_in_a_from_scratch_image(arch, tools, dist, tmp_path):
    """No cp, no shell: the image is the binary; run as uid 65534 on a read-only rootfs."""
    for layout, expect in ((["/install"], {"shim": arch}),
                           (["--arch", "all", "/install"], {f"shim-linux-{a}": a for a in ARCHES})):
        dest = tmp_path / "-".join(layout).strip("/").replace("/", "")
        dest.mkdir()
        dest.chmod(0o777)
        proc = podman("run", "--rm", "--read-only", "--read-only-tmpfs=false", "--user", "65534:65534",
                      "--platform", f"linux/{arch}", "-v", f"{dest}:/install", tools[arch], *layout)
        assert sorted(p.name for p in dest.iterdir()) == sorted(expect)
        for name, which in expect.items():
            assert (dest / name).read_bytes() == dist[which].read_bytes(), name
            assert (dest / name).stat().st_mode & 0o7777 == 0o755
        assert proc.stdout.startswith("installed /install/")
        # The installed binary runs (arm64 through qemu).
        if layout == ["/install"]:
            assert run([dest / "shim", "--version"]).stdout.startswith("shim ")


def test_dockerfile_tools_builds_the_same_image_with_podman(tools, archive, dist, tmp_path):
    require_tool("podman")
    labels = image_config(tools["amd64"])["Config"]["Labels"]
    args = {"VERSION": "version", "REVISION": "revision", "SOURCE": "source", "CREATED": "created"}
    build_args = [f"--build-arg={k}={labels[f'org.opencontainers.image.{v}']}" for k, v in args.items()]
    ref = f"localhost/{unique('shim-tools-dockerfile')}:test"
    context = dist["amd64"].parent.parent  # the session's copy: CONTEXT/dist/shim-linux-ARCH
    run(["podman", "build", "--isolation=chroot", "--platform", "linux/amd64,linux/arm64", "--manifest", ref,
         *build_args, "-f", REPO / "Dockerfile.tools", context], timeout=600)
    ids = []
    try:
        listed = json.loads(podman("manifest", "inspect", ref).stdout)
        by_arch = {m["platform"]["architecture"]: m["digest"] for m in listed["manifests"]}
        assert set(by_arch) == set(ARCHES)
        images = dict(line.split() for line in podman("images", "--digests", "--no-trunc", "--format",
                                                         "{{.Digest}} {{.ID}}").stdout.splitlines())
        for arch, digest in by_arch.items():
            ids.append(images[digest])
            theirs, ours = image_config(images[digest]), image_config(tools[arch])
            assert theirs["Architecture"] == ours["Architecture"] == arch
            for key in ("Entrypoint", "User"):
                assert theirs["Config"].get(key) == ours["Config"].get(key), key
            oci = lambda c: {k: v for k, v in c["Config"]["Labels"].items() if k.startswith("org.opencontainers.")}
            assert oci(theirs) == oci(ours)
            assert image_files(images[digest]) == image_files(tools[arch])
    finally:
        podman("manifest", "rm", ref, check=False)
        for image_id in ids:
            podman("rmi", "-f", image_id, check=False)


def test_ten_init_containers_at_once_into_one_volume(tools, dist):
    """Ten installers of the real binary share one podman volume: all succeed, one intact file."""
    volume = unique("shim-install-race")
    podman("volume", "create", volume)
    try:
        # As root: a fresh named volume is root-owned, and this test is about the race, not the uid.
        procs = [subprocess.Popen(["podman", "run", "--rm", "-v", f"{volume}:/install", "--user", "0:0",
                                   tools["amd64"], "/install"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True) for _ in range(10)]
        results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
        assert all(code == 0 for code, _, _ in results), results
        assert all(out in ("installed /install/shim\n", "unchanged /install/shim\n") for _, out, _ in results)
        root = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
        assert sorted(p.name for p in root.iterdir()) == ["shim"]
        assert (root / "shim").read_bytes() == dist["amd64"].read_bytes()
    finally:
        podman("volume", "rm", "-f", volume, check=False)


def test_dockerfile_default_version_is_the_package_version():
    text = (REPO / "Dockerfile.tools").read_text()
    init = (REPO / "shim/__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"', init, re.M).group(1)
    assert f"ARG VERSION={version}\n" in text


def test_the_real_binary_copies_its_real_path_not_argv0(dist, tmp_path):
    """Through a symlink and with a bogus argv[0], the frozen binary still installs itself."""
    link = tmp_path / "bin" / "shim-link"
    link.parent.mkdir()
    host = running_arch()
    link.symlink_to(dist[host])
    dest = tmp_path / "d"
    proc = subprocess.run(["not-a-path", "install", str(dest)], executable=str(link), capture_output=True,
                          text=True, timeout=60, env={"PATH": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert (dest / "shim").read_bytes() == dist[host].read_bytes()
    assert (dest / "shim").stat().st_mode & 0o7777 == 0o755
