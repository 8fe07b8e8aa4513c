"""scripts/publish against a real registry on loopback: push, inspect, pull back, run each platform."""

import hashlib
import json

import pytest

from tools_support import ARCHES, REPO, podman, require_tool, run, unique


@pytest.fixture(scope="module")
def published(archive, registry):
    require_tool("skopeo")
    dest = f"{registry}/shim/shim-tools:{unique('t')}"
    proc = run([REPO / "scripts/publish", "--insecure", "--archive", archive[0], dest], timeout=300)
    return dest, proc.stdout.strip()


def test_publish_prints_the_index_digest_to_pin(published, archive):
    dest, line = published
    assert line == f"{dest.rsplit(':', 1)[0]}@{archive[1]}"


def test_the_registry_holds_the_whole_index(published, archive, tmp_path):
    dest, pinned = published
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pinned}"]).stdout
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == archive[1]
    index = json.loads(raw)
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == sorted(ARCHES)
    # Pulled back as a whole, the index has the same digest.
    run(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false", f"docker://{pinned}",
         f"oci:{tmp_path / 'back'}:back"], timeout=300)
    top = json.loads((tmp_path / "back" / "index.json").read_text())
    assert [m["digest"] for m in top["manifests"]] == [archive[1]]


@pytest.mark.parametrize("arch", ARCHES)
def test_each_platform_pulls_and_runs(arch, published, dist, tmp_path):
    _, pinned = published
    podman("pull", "-q", "--tls-verify=false", "--platform", f"linux/{arch}", pinned, timeout=300)
    try:
        dest = tmp_path / "install"
        dest.mkdir(mode=0o777)
        dest.chmod(0o777)
        proc = podman("run", "--rm", "--platform", f"linux/{arch}", "-v", f"{dest}:/install", pinned, "/install")
        assert proc.stdout == "installed /install/shim\n"
        assert (dest / "shim").read_bytes() == dist[arch].read_bytes()
        version = podman("run", "--rm", "--platform", f"linux/{arch}", "--entrypoint", "/shim", pinned, "--version")
        assert version.stdout.startswith("shim ")
    finally:
        podman("rmi", "-f", pinned, check=False)


def test_publish_refuses_bad_input(archive, tmp_path):
    for args, code in ((["not-a-ref"], 125), (["--archive", tmp_path / "none.tar", "127.0.0.1:1/x:y"], 118)):
        proc = run([REPO / "scripts/publish", *args], check=False)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.startswith("shim: ") and proc.stderr.count("\n") == 1
