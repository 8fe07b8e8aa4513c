"""The SBOM of each binary: CycloneDX 1.5 (validated with cyclonedx-python-lib's own schemas),
and every component checked against the input files the build unpacked.

One clone of HEAD builds both arches with --save-inputs: the archive holds exactly
the files the build used, so each component's hash must name one of them and each
.deb's own control data must give the component's name, version and arch.  The
same document is checked where users meet it: `shim version --sbom` (arm64 through
qemu), dist/shim-linux-ARCH.cdx.json, and the tools image (the files beside the
binaries and the manifest annotation).
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from support import REPO, require_tool

# Builds from scratch (clones, empty caches, both arches): minutes on a loaded 2-core
# machine, longer than the suite's 300 s default (fixture set-up counts too).
pytestmark = pytest.mark.timeout(900)

ARCHES = ("amd64", "arm64")
TIMEOUT = 900
# The embedded components the issue names, by role (build/sbom.py LICENCES).
ROLES = {"glibc", "cpython", "openssl", "zlib", "setproctitle", "ca-bundle", "linux-headers", "libgcc"}


def _validate(text):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert errors is None, errors


@pytest.fixture(scope="module")
def built(saved_build):
    """(dist, inputs): a clone's dist/ and the files its build used (tests/build/conftest.py)."""
    return saved_build.dist, saved_build.inputs


def _control(deb):
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"], check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def _effective(inputs, arch):
    """(kind, name, arch, version, sha256) of every input arch's build used (the archive's lock)."""
    rows = []
    for line in (inputs / "inputs.lock").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and (fields[0] != "deb" or fields[2] in (arch, "all")):
            rows.append(tuple(fields[:5]))
    return rows


def _check_components(doc, arch, binary, inputs):
    from packageurl import PackageURL

    shim = doc["metadata"]["component"]
    assert shim["name"] == "shim" and shim["purl"].startswith("pkg:generic/shim@")
    assert shim["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(binary).hexdigest()}]
    by_hash = {c["hashes"][0]["content"]: c for c in doc["components"]}
    roles = {p["value"] for c in doc["components"] for p in c["properties"] if p["name"] == "shim:component"}
    assert roles == ROLES
    for c in doc["components"]:
        assert c["licenses"], c["name"]
        assert c["version"] and PackageURL.from_string(c["purl"]).version == c["version"], c["purl"]
    # Every input the build used is a component, with the file's sha256 ...
    used = _effective(inputs, arch)
    for kind, name, deb_arch, version, sha in used:
        component = by_hash.pop(sha)
        path = next((inputs / "files").glob(f"{sha}-*"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
        purl = PackageURL.from_string(component["purl"])
        assert (component["name"], component["version"], purl.name) == (name, version, name)
        if kind == "deb":
            # ... and what the .deb itself says it is.
            control = _control(path)
            assert (control["Package"], control["Version"], control["Architecture"]) == (name, version, deb_arch)
            assert component["purl"] == f"pkg:deb/debian/{name}@{version.replace('+', '%2B')}?arch={deb_arch}"
        elif kind == "sdist":
            assert component["purl"] == f"pkg:pypi/{name}@{version}"
            with tarfile.open(path) as tar:
                info = next(m for m in tar if m.name.endswith("/PKG-INFO") and m.name.count("/") == 1)
                assert f"\nVersion: {version}\n" in tar.extractfile(info).read().decode()
        else:
            assert purl.type == "deb" and purl.qualifiers == {"arch": "source"}
    # ... and the one component that is not a locked input: the toolchain's libgcc, by the file linked.
    (libgcc,) = by_hash.values()
    cc = {"amd64": "x86_64-linux-gnu-gcc", "arm64": "aarch64-linux-gnu-gcc"}[arch]
    path = subprocess.run([cc, "-print-libgcc-file-name"], check=True, capture_output=True, text=True).stdout.strip()
    assert libgcc["hashes"][0]["content"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], check=True, capture_output=True,
                           text=True).stdout.split(":", 1)[0]
    assert libgcc["name"] == owner
    # The CA bundle component names the bundle the binary really embeds.
    with zipfile.ZipFile(io.BytesIO(binary)) as zf:
        pem = zf.read("shim/net/cacert.pem")
    ca = next(c for c in doc["components"] if c["name"] == "ca-certificates")
    assert {"name": "shim:embedded-sha256", "value": hashlib.sha256(pem).hexdigest()} in ca["properties"]
    assert ca["type"] == "data"


@pytest.mark.parametrize("arch", ARCHES)
def test_binary_prints_a_valid_sbom_of_what_the_build_unpacked(built, arch):
    dist, inputs = built
    binary = dist / f"shim-linux-{arch}"
    out = subprocess.run([str(binary), "version", "--sbom"], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    _validate(out)
    doc = json.loads(out)
    assert doc["specVersion"] == "1.5" and doc["bomFormat"] == "CycloneDX"
    _check_components(doc, arch, binary.read_bytes(), inputs)
    # The file beside the binary is the same document.
    beside = (dist / f"shim-linux-{arch}.cdx.json").read_text()
    _validate(beside)
    assert json.loads(beside) == doc
    # shim version (JSON) says locked/drifted and lists the component versions the SBOM names.
    report = json.loads(subprocess.run([str(binary), "version"], check=True, capture_output=True, text=True,
                                       timeout=120).stdout)
    versions = {c["name"]: c["version"] for c in doc["components"]}
    assert report["build"] in ("locked", "drifted")
    assert {"name": "shim:build", "value": report["build"]} in doc["metadata"]["component"]["properties"]
    assert report["components"]["glibc"] == versions["libc6-dev"]
    assert report["components"]["openssl"] == versions["libssl-dev"]
    assert report["components"]["zlib"] == versions["zlib1g-dev"]
    assert report["components"]["setproctitle"] == versions["setproctitle"]
    assert report["components"]["ca-certificates"] == versions["ca-certificates"]


def test_tools_image_carries_each_sbom_beside_its_binary_and_in_annotations(built):
    dist, inputs = built
    with tarfile.open(dist / "shim-tools.oci.tar") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    def blob(digest):
        return files[f"blobs/sha256/{digest.split(':', 1)[1]}"]

    (top,) = json.loads(files["index.json"])["manifests"]
    index = json.loads(blob(top["digest"]))
    seen = set()
    for desc in index["manifests"]:
        arch = desc["platform"]["architecture"]
        manifest = json.loads(blob(desc["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(manifest["layers"][0]["digest"])))) as layer:
            root = {m.name: layer.extractfile(m).read() for m in layer if m.isfile()}
        binaries = {a: root["shim"] if a == arch else root[f"shim-linux-{a}"] for a in ARCHES}
        for a in ARCHES:
            text = root[f"shim-linux-{a}.cdx.json"]
            _validate(text.decode())
            assert text == (dist / f"shim-linux-{a}.cdx.json").read_bytes()
            _check_components(json.loads(text), a, binaries[a], inputs)
        notes, own = manifest["annotations"], root[f"shim-linux-{arch}.cdx.json"]
        assert notes["dev.shim.sbom"] == f"/shim-linux-{arch}.cdx.json"
        assert notes["dev.shim.sbom.digest"] == "sha256:" + hashlib.sha256(own).hexdigest()
        assert json.loads(notes["dev.shim.sbom.cyclonedx"]) == json.loads(own)
        assert config["config"]["Labels"]["dev.shim.sbom.digest"] == notes["dev.shim.sbom.digest"]
        seen.add(arch)
    assert seen == set(ARCHES)


def test_skopeo_inspect_shows_the_sbom(built):
    """Plain `skopeo inspect` shows each platform's SBOM label: where the file is and its digest."""
    require_tool("skopeo")
    dist, _ = built
    for arch in ARCHES:
        plain = json.loads(subprocess.run(["skopeo", "inspect", "--override-arch", arch,
                                           f"oci-archive:{dist / 'shim-tools.oci.tar'}"], check=True,
                                          capture_output=True, text=True, timeout=120).stdout)
        digest = "sha256:" + hashlib.sha256((dist / f"shim-linux-{arch}.cdx.json").read_bytes()).hexdigest()
        assert plain["Labels"]["dev.shim.sbom"] == f"/shim-linux-{arch}.cdx.json"
        assert plain["Labels"]["dev.shim.sbom.digest"] == digest


def test_source_install_prints_a_sensible_sbom():
    out = subprocess.run([sys.executable, "-m", "shim", "version", "--sbom"], check=True, capture_output=True,
                         text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60).stdout
    _validate(out)
    doc = json.loads(out)
    assert doc["metadata"]["component"]["name"] == "shim"
    runtime = doc["components"][0]
    assert runtime["name"] == sys.implementation.name and runtime["version"] == ".".join(map(str, sys.version_info[:3]))
