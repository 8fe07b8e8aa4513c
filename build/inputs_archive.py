"""One file holding every input a build used: `scripts/build --save-inputs FILE` / `--inputs FILE`.

A plain (uncompressed: the .debs and tarballs are compressed already),
reproducible tar:

    shim-inputs/MANIFEST.json      format, commit, SOURCE_DATE_EPOCH, arches, locked/drifted,
                                   the drift, and the sha256 of every file below
    shim-inputs/locked.lock        build/inputs.lock as the build read it
    shim-inputs/inputs.lock        the effective lock: the entries actually used
    shim-inputs/files/SHA256-NAME  every input file (.debs, the CPython orig tarball, the sdist)
    shim-inputs/relink/ARCH/       the relink kit (glibc's LGPL): the launcher's object files,
                                   the .pyc archive appended to it, link.sh (see README.txt)
    shim-inputs/README.txt         what this is and how to rebuild or relink

`load()` verifies every file against both the manifest and the effective lock
and copies it into the cache's input store (named by its hash, where
lock.fetch finds it), so the rebuild needs no network and uses the very same
bytes: the binary comes out identical (tests/build/test_inputs_archive.py).
"""

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import lock

TOP = "shim-inputs"
FORMAT = 1
README = """\
shim build inputs
=================

Every file `scripts/build` used for the shim binaries of commit {commit}
({arches}), verified by sha256 (MANIFEST.json, inputs.lock).

Rebuild the identical binaries, offline, from a checkout of that commit:

    git checkout {commit}
    SHIM_CACHE=$(mktemp -d) scripts/build --arch {arch_arg} --inputs THIS-FILE

Relink against a modified glibc (LGPL-2.1 section 6): for ARCH,

    mkdir sysroot && for f in files/*.deb; do dpkg-deb -x "$f" sysroot; done
    # (only ARCH's .debs and ca-certificates: the names end in _ARCH.deb / _all.deb)
    # replace sysroot/usr/lib/TRIPLET/libc.a (and friends) with your build of glibc, then
    SYSROOT=$PWD/sysroot relink/ARCH/link.sh shim-linux-ARCH

link.sh links relink/ARCH/*.o (the launcher, the C modules, setproctitle)
against the libraries in SYSROOT with the toolchain named in it, and appends
relink/ARCH/archive.zip (the Python code) to the result.  The corresponding
source of glibc itself, Debian's source package glibc at the libc6-dev version
in inputs.lock, is in source/glibc/ (MANIFEST.json's sources_missing names any
file the mirror no longer served when this archive was saved; get it with
`apt-get source glibc=VERSION`); shim's own source is its git repository.
"""


class Saved:
    """What load() read: the lock the build started from, the entries it used, the manifest."""

    def __init__(self, locked, entries, manifest):
        self.locked, self.entries, self.manifest = locked, entries, manifest


def _info(name, size, epoch, mode=0o644):
    info = tarfile.TarInfo(f"{TOP}/{name}")
    info.size, info.mtime, info.mode = size, epoch, mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def file_name(entry):
    return lock.stored(entry, "/").name


def glibc_source(resolution, cache, log):
    """{archive name: path} of Debian's glibc source package at the libc6-dev version the
    build linked (LGPL-2.1 section 6: the library's own source goes with the relink kit).
    apt-get source fetches it through shim's private deb-src index; a mirror that no longer
    serves a file of it gives what it still has (the orig tarball outlives security .dsc
    files), and the manifest lists what is missing."""
    import tempfile

    version = next((e.version for e in resolution.entries if e.kind == "deb" and e.name == "libc6-dev"), None)
    if version is None:
        return {}, ["glibc (no libc6-dev in the lock)"]
    store = Path(cache) / "inputs" / f"glibc-source-{version}"
    if not store.is_dir() or not any(store.iterdir()):
        tmp = Path(tempfile.mkdtemp(prefix=".glibc-src-", dir=lock._mkdir(Path(cache) / "inputs")))
        os.chmod(tmp, 0o777)  # apt-get source may drop privileges to _apt
        log(f"fetching Debian's glibc source package {version} (for the relink kit's LGPL notice)")
        lock._run(lock.apt_source_argv(cache) + ["source", "--download-only", f"glibc={version}"], cwd=tmp)
        got = [f for f in tmp.iterdir() if f.is_file()]
        if got:
            store.mkdir(parents=True, exist_ok=True)
            for f in got:
                os.replace(f, store / f.name)
        shutil.rmtree(tmp, ignore_errors=True)
    found = {f"source/glibc/{f.name}": f for f in sorted(store.iterdir())} if store.is_dir() else {}
    missing = [] if any(".orig.tar." in n for n in found) else [f"glibc={version} (orig tarball)"]
    if not any(n.endswith(".dsc") for n in found):
        missing.append(f"glibc={version} (.dsc and Debian's patches)")
    return found, missing


def save(out, resolution, manifest, kits, epoch, sources=None):
    """Write the archive to out atomically. kits: {arch: RelinkKit} (may be empty);
    sources: ({archive name: path} of source packages to include, [what is missing])."""
    from shim.util import fsutil

    files = {f"files/{file_name(e)}": resolution.paths[e.key] for e in resolution.entries}
    extra, missing = sources or ({}, [])
    files.update(extra)
    if missing:
        manifest = {**manifest, "sources_missing": missing}
    manifest = {**manifest, "format": FORMAT, "build": resolution.state,
                "drift": resolution.drift_record(), "files": {}}
    members = {}  # name -> bytes or Path
    for name, path in files.items():
        members[name] = path
        manifest["files"][name] = name.split("/", 1)[1].split("-", 1)[0] if name.startswith("files/") \
            else lock.sha256_file(path)
    for arch, kit in sorted(kits.items()):
        for name, data in kit.members():
            members[f"relink/{arch}/{name}"] = data
            manifest["files"][f"relink/{arch}/{name}"] = hashlib.sha256(
                data if isinstance(data, bytes) else Path(data).read_bytes()).hexdigest()
    members["locked.lock"] = lock.render(resolution.locked).encode()
    members["inputs.lock"] = resolution.lock_text().encode()
    arches = manifest.get("arches", [])
    members["README.txt"] = README.format(commit=manifest.get("commit"), arches=", ".join(arches),
                                          arch_arg="all" if len(arches) > 1 else "".join(arches)).encode()
    members["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    def fill(fd):
        with os.fdopen(os.dup(fd), "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(members):
                data = members[name]
                mode = 0o755 if name.endswith(".sh") else 0o644
                if isinstance(data, bytes):
                    tar.addfile(_info(name, len(data), epoch, mode), io.BytesIO(data))
                else:
                    with open(data, "rb") as src:
                        tar.addfile(_info(name, os.fstat(src.fileno()).st_size, epoch, mode), src)

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fsutil.write_atomically(str(out), fill)


def load(path, cache, log):
    """Verify the archive at path and copy its input files into cache; return Saved."""
    where = Path(path).name
    try:
        tar = tarfile.open(path, mode="r:")
    except (OSError, tarfile.TarError) as err:
        raise lock.LockError(f"read inputs archive {path}: {err}; pass a file written by "
                             "scripts/build --save-inputs") from None
    with tar:
        def member(name):
            try:
                return tar.extractfile(f"{TOP}/{name}").read()
            except (KeyError, AttributeError):
                raise lock.LockError(f"read inputs archive {path}: no {TOP}/{name}; pass a file written by "
                                     "scripts/build --save-inputs") from None

        manifest = json.loads(member("MANIFEST.json"))
        if manifest.get("format") != FORMAT:
            raise lock.LockError(f"read inputs archive {path}: format {manifest.get('format')!r} is not {FORMAT}; "
                                 "save the inputs again with this scripts/build")
        locked = lock.parse(member("locked.lock").decode(), f"{where}:locked.lock")
        entries = lock.parse(member("inputs.lock").decode(), f"{where}:inputs.lock")
        store = Path(cache) / "inputs"
        store.mkdir(parents=True, exist_ok=True)
        for e in entries:
            name = f"files/{file_name(e)}"
            if manifest["files"].get(name) != e.sha256:
                raise lock.LockError(f"verify inputs archive {path}: {e.label} is not listed with its "
                                     "sha256 in MANIFEST.json; the archive is damaged: save it again")
            target = lock.stored(e, cache)
            if target.exists() and lock.sha256_file(target) == e.sha256:
                continue
            src = tar.extractfile(f"{TOP}/{name}")
            if src is None:
                raise lock.LockError(f"read inputs archive {path}: no {name}; the archive is damaged: save it again")
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            digest = lock.sha256_file(tmp)
            if digest != e.sha256:
                tmp.unlink()
                raise lock.LockError(f"verify inputs archive {path}: {name} has sha256 {digest[:16]}…, not the "
                                     f"recorded {e.sha256[:16]}…; the archive is damaged: save it again")
            os.replace(tmp, target)
    log(f"inputs from {path}: {len(entries)} files verified (commit {manifest.get('commit')}, "
        f"{manifest.get('build')})")
    return Saved(locked, entries, manifest)
