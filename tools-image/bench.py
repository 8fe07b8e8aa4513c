#!/usr/bin/python3
"""Figures for `scripts/bench install`: shim install time and tools image size per arch.

    tools-image/bench.py [--dist DIR] [--archive PATH] [--runs N] [--only install|image] [--json]

Install time: wall clock of `dist/shim-linux-<host arch> install DIR` as a
fresh process into a new, empty directory (what an init container does into an
emptyDir), on disk and on tmpfs (emptyDir medium: Memory); then the no-op
repeat and a --versioned install.  Goal: <= 150 ms for the fresh install.
Image size: per platform, the compressed bytes a node pulls (manifest, config,
layer) and the unpacked layer size, read from the OCI archive.

Stdlib only; build/bench-time code, never imported by shim.
"""

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from shim.util import platforms  # noqa: E402  (the one arch-name map)

GOAL_MS = 150
HOST_ARCH = platforms.running_arch()


def timed(argv):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def summary(samples):
    samples = sorted(samples)
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(samples[0], 1),
            "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1), "runs": len(samples)}


def install_times(binary, runs):
    """{case: summary} for fresh installs on disk and tmpfs, the no-op repeat, and --versioned."""
    results = {}
    roots = {"disk": tempfile.mkdtemp(prefix="shim-bench-", dir=REPO / ".work" if (REPO / ".work").is_dir() else None)}
    if os.path.isdir("/dev/shm"):
        roots["tmpfs"] = tempfile.mkdtemp(prefix="shim-bench-", dir="/dev/shm")
    try:
        for medium, root in roots.items():
            fresh, noop, versioned = [], [], []
            for i in range(runs):
                dest = os.path.join(root, f"fresh{i}")
                fresh.append(timed([binary, "install", dest]))
                noop.append(timed([binary, "install", dest]))
                versioned.append(timed([binary, "install", "--versioned", os.path.join(root, f"v{i}")]))
            results[f"fresh_{medium}"] = summary(fresh)
            results[f"noop_{medium}"] = summary(noop)
            results[f"versioned_{medium}"] = summary(versioned)
    finally:
        for root in roots.values():
            subprocess.run(["rm", "-rf", "--", root], check=False)
    return results


def image_sizes(archive):
    """{arch: {pull_bytes, unpacked_bytes}} from the OCI archive's index."""
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    def blob(digest):
        return files[f"blobs/sha256/{digest.split(':')[1]}"]

    top = json.loads(files["index.json"])
    index = json.loads(blob(top["manifests"][0]["digest"]))
    sizes = {}
    for desc in index["manifests"]:
        manifest = json.loads(blob(desc["digest"]))
        layers = manifest["layers"]
        sizes[desc["platform"]["architecture"]] = {
            "pull_bytes": desc["size"] + manifest["config"]["size"] + sum(layer["size"] for layer in layers),
            "unpacked_bytes": sum(len(gzip.decompress(blob(layer["digest"]))) for layer in layers),
        }
    return sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", default=str(REPO / "dist"))
    parser.add_argument("--archive", default=None, help="default DIST/shim-tools.oci.tar")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=("install", "image"), help="one figure only")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    binary = os.path.join(args.dist, f"shim-linux-{HOST_ARCH}")
    archive = args.archive or os.path.join(args.dist, "shim-tools.oci.tar")
    needed = {"install": [binary], "image": [archive]}.get(args.only, [binary, archive])
    for path in needed:
        if not os.path.isfile(path):
            sys.exit(f"shim: bench install {path}: missing; run scripts/build --arch all first")
    report = {"goal_ms": GOAL_MS, "binary": binary}
    if args.only in (None, "install"):
        report["install"] = install_times(binary, args.runs)
    if args.only in (None, "image"):
        report["image"] = image_sizes(archive)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for case, s in report.get("install", {}).items():
        print(f"install {case:16} median {s['median_ms']:7.1f} ms  p90 {s['p90_ms']:7.1f} ms  ({s['runs']} runs)")
    for arch, s in report.get("image", {}).items():
        print(f"image   linux/{arch:10} pull {s['pull_bytes'] / 1e6:6.1f} MB  "
              f"unpacked {s['unpacked_bytes'] / 1e6:6.1f} MB")
    if "install" in report:
        fresh = report["install"]["fresh_disk"]["median_ms"]
        print(f"goal    fresh install <= {GOAL_MS} ms: {'met' if fresh <= GOAL_MS else 'MISSED'} ({fresh} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
