#!/usr/bin/python3
"""Build the shim tools image: dist/shim-linux-{amd64,arm64} -> dist/shim-tools.oci.tar.

    tools-image/build.py [--dist DIR] [--out PATH] [--tag TAG]

The result is an OCI archive (oci-layout, index.json, blobs/) whose index.json
names one multi-arch image index (linux/amd64 + linux/arm64).  Each platform's
image is FROM scratch with one layer:

    /shim                   this platform's binary (ENTRYPOINT ["/shim", "install"])
    /shim-linux-<other>     every other platform's binary, for `shim install --arch all`
    /shim-linux-<arch>.cdx.json   each binary's CycloneDX SBOM (embedded at build time + its sha256);
                            the platform's own is also in its manifest's annotations
                            (dev.shim.sbom*) and its config's labels (dev.shim.sbom, .digest)

It is written by hand with the stdlib, not with umoci or buildah, because those
stamp the current time into configs and tar headers and are hard to make
byte-reproducible.  Here every input that could vary is fixed: timestamps from
SOURCE_DATE_EPOCH (default: the HEAD commit's time), entries sorted, uid/gid 0
with empty owner names, ustar headers, gzip level 9 with mtime 0 and no file
name, JSON with sorted keys.  Building twice gives the same bytes and so the
same index digest (tests/tools/test_image.py), given the same zlib.

Settings: SOURCE_DATE_EPOCH, SHIM_IMAGE_VERSION (default shim.__version__),
SHIM_IMAGE_REVISION (default git HEAD), SHIM_IMAGE_SOURCE (default the git
remote "origin", else "unknown").  Build-time only: never imported by shim.
Stdlib only and run by /usr/bin/python3, so it works before the venv exists.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from shim.util import fsutil, platforms  # noqa: E402  (arch names, atomic writes)

ARCHES = platforms.ARCHES
TITLE = "shim-tools"
ENTRYPOINT = ["/shim", "install"]
USER = "65534:65534"  # Kubernetes' runAsNonRoot needs a numeric non-root user
GZIP_LEVEL = 9

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


# -- pure pieces: each returns what to write ---------------------------------------


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, data, **extra):
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def tar_bytes(entries, epoch):
    """A reproducible tar of [(name, bytes | None for a directory, mode)], sorted by name."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mtime = epoch
            info.mode = mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gzip_bytes(data):
    """gzip with a fixed level, mtime 0 and no file name in the header."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def layer_files(arch, binaries, sboms=None):
    """The files of `arch`'s image: its binary as /shim, the others by platform name, and every
    binary's SBOM as /shim-linux-ARCH.cdx.json (the one of /shim too)."""
    files = [("shim", binaries[arch], 0o755)]
    files += [(f"shim-linux-{other}", binaries[other], 0o755) for other in ARCHES if other != arch]
    files += [(f"shim-linux-{a}.cdx.json", doc, 0o644) for a, doc in sorted((sboms or {}).items())]
    return files


SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"


def sbom_annotations(arch, sboms):
    """Where the platform's SBOM is, its digest, and the document itself (compact), for
    `skopeo inspect --raw` and registries that show manifest annotations."""
    if arch not in sboms:
        return {}
    doc = json.loads(sboms[arch])
    return {
        "dev.shim.sbom": f"/shim-linux-{arch}.cdx.json",
        "dev.shim.sbom.digest": sha256(sboms[arch]),
        "dev.shim.sbom.mediaType": SBOM_MEDIA_TYPE,
        "dev.shim.sbom.cyclonedx": json.dumps(doc, sort_keys=True, separators=(",", ":")),
    }


def sbom_labels(arch, sboms):
    """The same pointer as image labels (plain `skopeo inspect` shows labels)."""
    if arch not in sboms:
        return {}
    return {"dev.shim.sbom": f"/shim-linux-{arch}.cdx.json", "dev.shim.sbom.digest": sha256(sboms[arch])}


def labels(meta):
    return {
        "org.opencontainers.image.title": TITLE,
        "org.opencontainers.image.description": "shim binaries; `shim install DIR` copies one into DIR",
        "org.opencontainers.image.version": meta["version"],
        "org.opencontainers.image.revision": meta["revision"],
        "org.opencontainers.image.source": meta["source"],
        "org.opencontainers.image.created": meta["created"],
        "org.opencontainers.image.licenses": "Apache-2.0",
    }


def image_config(arch, diff_id, meta, sboms=None):
    return {
        "architecture": arch,
        "os": "linux",
        "created": meta["created"],
        "config": {
            "Entrypoint": ENTRYPOINT,
            "User": USER,
            "Labels": {**labels(meta), **sbom_labels(arch, sboms or {})},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": meta["created"], "created_by": "tools-image/build.py"}],
    }


def platform_image(arch, binaries, meta, sboms=None):
    """(blobs, manifest bytes) for one platform."""
    sboms = sboms or {}
    layer_tar = tar_bytes(layer_files(arch, binaries, sboms), meta["epoch"])
    layer = gzip_bytes(layer_tar)
    config = canonical_json(image_config(arch, sha256(layer_tar), meta, sboms))
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": descriptor(MT_CONFIG, config),
        "layers": [descriptor(MT_LAYER, layer)],
        "annotations": {"org.opencontainers.image.created": meta["created"], **sbom_annotations(arch, sboms)},
    })
    return {sha256(layer): layer, sha256(config): config, sha256(manifest): manifest}, manifest


def image_index(binaries, meta, sboms=None):
    """(blobs, index bytes): every platform's image under one image index."""
    blobs, manifests = {}, []
    for arch in ARCHES:
        more, manifest = platform_image(arch, binaries, meta, sboms)
        blobs.update(more)
        manifests.append(descriptor(MT_MANIFEST, manifest, platform={"architecture": arch, "os": "linux"}))
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": manifests,
        "annotations": {k: v for k, v in labels(meta).items() if k != "org.opencontainers.image.description"},
    })
    blobs[sha256(index)] = index
    return blobs, index


def oci_archive(blobs, index, tag, epoch):
    """The OCI layout as one tar: index.json names the image index by `tag`."""
    top = canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [descriptor(MT_INDEX, index, annotations={"org.opencontainers.image.ref.name": tag})],
    })
    entries = [
        ("blobs", None, 0o755),
        ("blobs/sha256", None, 0o755),
        ("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}), 0o644),
        ("index.json", top, 0o644),
    ]
    entries += [(f"blobs/sha256/{digest.split(':', 1)[1]}", data, 0o644) for digest, data in blobs.items()]
    return tar_bytes(entries, epoch)


# -- inputs ------------------------------------------------------------------------


def _git(*args):
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _version():
    text = (REPO / "shim" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def metadata(env):
    epoch = int(env.get("SOURCE_DATE_EPOCH") or _git("log", "-1", "--format=%ct") or 0)
    return {
        "epoch": epoch,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "version": env.get("SHIM_IMAGE_VERSION") or _version(),
        "revision": env.get("SHIM_IMAGE_REVISION") or _git("rev-parse", "HEAD") or "unknown",
        "source": env.get("SHIM_IMAGE_SOURCE") or _git("remote", "get-url", "origin") or "unknown",
    }


def read_binaries(dist):
    binaries = {}
    for arch in ARCHES:
        path = Path(dist) / f"shim-linux-{arch}"
        if not path.is_file():
            raise SystemExit(f"shim: build tools image {path}: missing; run scripts/build --arch all first")
        binaries[arch] = path.read_bytes()
    return binaries


# -- the one edge that writes -------------------------------------------------------


def read_sboms(binaries):
    """{arch: SBOM file bytes}: each binary's embedded CycloneDX document plus its sha256 (the same
    bytes scripts/build writes to dist/shim-linux-ARCH.cdx.json).  A binary without one (another
    freezer's) has none."""
    from shim.util import sbom

    found = {arch: sbom.from_binary(data) for arch, data in binaries.items()}
    for arch, doc in found.items():
        if doc is None:
            sys.stderr.write(f"tools-image: shim-linux-{arch} embeds no SBOM (not a static build): "
                             "the image carries none for it\n")
    return {arch: doc for arch, doc in found.items() if doc is not None}


def build(dist, out, tag, env):
    meta = metadata(env)
    binaries = read_binaries(dist)
    blobs, index = image_index(binaries, meta, read_sboms(binaries))
    data = oci_archive(blobs, index, tag or meta["version"], meta["epoch"])
    fsutil.write_atomically(str(out), lambda fd: fsutil.write_all(fd, data))
    return sha256(index)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", default=str(REPO / "dist"), help="directory with shim-linux-ARCH (default dist/)")
    parser.add_argument("--out", default=None, help="the OCI archive to write (default DIST/shim-tools.oci.tar)")
    parser.add_argument("--tag", default=None, help="ref name inside the archive (default: the version)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.dist, "shim-tools.oci.tar")
    digest = build(args.dist, out, args.tag, os.environ)
    print(f"{out} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
