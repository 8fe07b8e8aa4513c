"""Per-arch build inputs: the locked Debian packages, unpacked (never installed).

Both arches are built from the same packages at the same versions, pinned in
build/inputs.lock (build/lock.py): glibc (libc6-dev of the target arch, not
the cross toolchain's own copy), kernel headers, libpython3.11 (static library,
headers, the pure-Python stdlib), zlib, OpenSSL (libssl.a/libcrypto.a) and the
CA certificates.  Each .deb is verified by its sha256, then `dpkg-deb -x`
unpacks the set into ${SHIM_CACHE}/sysroot-locked/ARCH-KEY (KEY: digest of
the locked lines), which the compiler uses as its --sysroot.

`source_tree()` and `sdist_tree()` unpack the CPython source (Modules/_ssl.c
and friends) and the setproctitle sdist the same way, keyed by their hashes.
"""

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import lock

from shim.util import platforms  # build.py puts the repo on sys.path

TRIPLET = {arch: platforms.triplet(arch) for arch in platforms.ARCHES}


class Sysroot:
    """Paths into one unpacked per-arch package set."""

    def __init__(self, root, arch, entries):
        self.root = Path(root)
        self.arch = arch
        self.versions = {e.name: e.version for e in entries}  # package -> Debian version
        self.entries = entries
        triplet = TRIPLET[arch]
        lib = self.root / "usr/lib" / triplet
        self.libpython = self.root / f"usr/lib/python3.11/config-3.11-{triplet}/libpython3.11.a"
        self.libz = lib / "libz.a"
        self.libssl = lib / "libssl.a"
        self.libcrypto = lib / "libcrypto.a"
        self.include = [self.root / "usr/include/python3.11", self.root / f"usr/include/{triplet}/python3.11"]
        self.stdlib = self.root / "usr/lib/python3.11"
        self.cacerts = self.root / "usr/share/ca-certificates/mozilla"


def _key(entries):
    return hashlib.sha256("".join(e.line() for e in entries).encode()).hexdigest()[:16]


def _publish(tmp_tree, root):
    """Rename a finished tree into place; a concurrent build's identical copy wins."""
    if root.exists() and not (root / ".complete").exists():
        shutil.rmtree(root)  # a half-written leftover of an interrupted build
    try:
        tmp_tree.rename(root)
    except OSError:
        if not (root / ".complete").exists():
            raise


def ensure(cache, arch, entries, log):
    """Return a Sysroot for arch, fetching (verified) and unpacking it once per lock."""
    wanted = lock.debs(entries, arch)
    paths = [lock.fetch(e, cache, log) for e in wanted]  # every hash checked before anything is unpacked
    root = Path(cache) / "sysroot-locked" / f"{arch}-{_key(wanted)}"
    if (root / ".complete").exists():
        return Sysroot(root, arch, wanted)
    log(f"unpacking {arch}: {', '.join(e.label for e in wanted)}")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=root.parent))
    tree = tmp / "root"
    for deb in paths:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    (tree / ".complete").write_text("".join(e.line() for e in wanted))
    _publish(tree, root)
    shutil.rmtree(tmp, ignore_errors=True)
    return Sysroot(root, arch, wanted)


def ensure_foreign_arch(arch, host_arch):
    """dpkg must know arch before apt-get can download its packages."""
    if arch == host_arch:
        return
    out = subprocess.run(["dpkg", "--print-foreign-architectures"], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    if arch not in out.split():
        subprocess.run(["dpkg", "--add-architecture", arch], check=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, stdin=subprocess.DEVNULL)


def ca_bundle(sysroot):
    """(PEM bytes, version) of Debian's Mozilla CA set, in file-name order.

    The first line names the package version (shim/net/cabundle.py reads it);
    OpenSSL skips text outside the PEM blocks.
    """
    version = sysroot.versions["ca-certificates"]
    parts = [f"# ca-certificates {version} (Debian), embedded by scripts/build\n".encode()]
    for crt in sorted(sysroot.cacerts.glob("*.crt")):
        parts.append(crt.read_bytes().rstrip(b"\n") + b"\n")
    if len(parts) < 50:
        raise RuntimeError(f"read the CA certificates in {sysroot.cacerts}: only {len(parts) - 1} found")
    return b"".join(parts), version


def _unpack_tar(entry, cache, log, members):
    """Unpack the members of entry's tarball whose path (below its top directory)
    starts with one of `members`; return the top directory."""
    path = lock.fetch(entry, cache, log)
    root = Path(cache) / "src" / f"{entry.name}-{entry.sha256[:16]}"
    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".src-", dir=root.parent))
    tree = tmp / "tree"
    tree.mkdir()
    with tarfile.open(path) as tar:
        for member in tar:
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and rel.startswith(members):
                member.name = rel
                tar.extract(member, tree, set_attrs=False)
    (tree / ".complete").write_text(entry.line())
    _publish(tree, root)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def source_tree(entries, cache, log):
    """The CPython Modules/ directory of the locked source package (orig tarball)."""
    src = lock.find(entries, "src", lock.SOURCE[0])
    dev = lock.find(entries, "deb", lock.SOURCE[1])
    if src.version != dev.version:
        raise lock.LockError(f"check build/inputs.lock: {src.name} {src.version} does not match "
                             f"{dev.name} {dev.version}; the C modules must come from the libpython's source: "
                             "run scripts/build --update-lock")
    return _unpack_tar(src, cache, log, ("Modules/", "Include/"))


def sdist_tree(entries, name, cache, log):
    return _unpack_tar(lock.find(entries, "sdist", name), cache, log, ("src/", "pkg/", "PKG-INFO", "LICENSE"))
