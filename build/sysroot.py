"""Per-arch build inputs from Debian packages, unpacked (never installed).

Both arches are built from the same set of packages of the same version:
libpython3.11-dev (libpython3.11.a, headers), libpython3.11-minimal/-stdlib
(the pure-Python stdlib the archive is made from) and zlib1g-dev (libz.a).
`apt-get download` fetches them (dpkg --add-architecture arm64 first), and
`dpkg-deb -x` unpacks them into ${SHIM_CACHE}/sysroot/ARCH-KEY, KEY being a
digest of the exact package versions, so a second build is instant.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGES = ("libpython3.11-dev", "libpython3.11-minimal", "libpython3.11-stdlib", "zlib1g-dev")
TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


class Sysroot:
    """Paths into one unpacked per-arch package set."""

    def __init__(self, root, arch, versions):
        self.root = Path(root)
        self.arch = arch
        self.versions = versions  # package -> Debian version
        triplet = TRIPLET[arch]
        self.libpython = self.root / f"usr/lib/python3.11/config-3.11-{triplet}/libpython3.11.a"
        self.libz = self.root / f"usr/lib/{triplet}/libz.a"
        self.include = [self.root / "usr/include/python3.11", self.root / "usr/include"]
        self.stdlib = self.root / "usr/lib/python3.11"


def _run(argv, **kw):
    return subprocess.run(argv, check=True, text=True, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, **kw).stdout


def candidate_versions(arch):
    """package -> version apt would download now for this arch."""
    versions = {}
    for pkg in PACKAGES:
        out = _run(["apt-cache", "show", "--no-all-versions", f"{pkg}:{arch}"])
        for line in out.splitlines():
            if line.startswith("Version: "):
                versions[pkg] = line.split(": ", 1)[1].strip()
                break
        else:
            raise RuntimeError(f"apt-cache knows no {pkg}:{arch}")
    return versions


def ensure_foreign_arch(arch, host_arch):
    if arch == host_arch:
        return
    if arch in _run(["dpkg", "--print-foreign-architectures"]).split():
        return
    subprocess.run(["dpkg", "--add-architecture", arch], check=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, stdin=subprocess.DEVNULL)


def ensure(cache, arch, host_arch, log):
    """Return a Sysroot for arch, downloading and unpacking it once per version set."""
    ensure_foreign_arch(arch, host_arch)
    try:
        versions = candidate_versions(arch)
    except (subprocess.CalledProcessError, RuntimeError):
        subprocess.run(["apt-get", "update", "-q"], check=True, stdin=subprocess.DEVNULL)
        versions = candidate_versions(arch)
    key = hashlib.sha256(repr(sorted(versions.items())).encode()).hexdigest()[:16]
    root = Path(cache) / "sysroot" / f"{arch}-{key}"
    if (root / ".complete").exists():
        return Sysroot(root, arch, versions)
    log(f"unpacking {arch} packages {', '.join(f'{p}={v}' for p, v in sorted(versions.items()))}")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=root.parent))
    debs = tmp / "debs"
    debs.mkdir()
    # apt-get download runs as the _apt user when it can: let it write here.
    os.chmod(tmp, 0o755)
    os.chmod(debs, 0o777)
    _run(["apt-get", "download", "-q"] + [f"{p}:{arch}={v}" for p, v in sorted(versions.items())], cwd=debs)
    tree = tmp / "root"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    (tree / ".complete").write_text("".join(f"{p} {v}\n" for p, v in sorted(versions.items())))
    if root.exists() and not (root / ".complete").exists():
        shutil.rmtree(root)  # a half-written leftover of an interrupted build
    try:
        os.rename(tree, root)
    except OSError:
        # A concurrent build finished first: its copy is identical; never
        # replace a sysroot another build may be linking against.
        if not (root / ".complete").exists():
            raise
    shutil.rmtree(tmp)
    return Sysroot(root, arch, versions)
