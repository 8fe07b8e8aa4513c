"""build/inputs.lock: every file the build unpacks, pinned by version and sha256.

One line per input, whitespace-separated:

    deb   PACKAGE  ARCH    VERSION  SHA256            a Debian binary package (apt-get download)
    src   PACKAGE  source  VERSION  SHA256  FILE      a file of a Debian source package (apt-get source)
    sdist NAME     any     VERSION  SHA256  FILE      a Python sdist (pip download --no-binary)

`fetch()` returns the local path of an input, downloading it once into the
cache (named by its sha256) and refusing any file whose hash differs from the
lock.  `update()` asks apt and pip for today's versions and returns the new
lock text (`scripts/build --update-lock` writes it); it refuses to lock two
arches to different versions of one package.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "inputs.lock"
ARCHES = ("amd64", "arm64")
# Unpacked into each arch's sysroot: the same names (and versions) for both arches.
DEBS = ("libc6-dev", "libpython3.11-dev", "libpython3.11-minimal", "libpython3.11-stdlib",
        "libssl-dev", "linux-libc-dev", "zlib1g-dev")
# Architecture-independent packages, unpacked once.
DEBS_ALL = ("ca-certificates",)
# The CPython source (Modules/_ssl.c & co.) matching libpython3.11-dev.
SOURCE = ("python3.11", "libpython3.11-dev")
SDISTS = ("setproctitle",)
HEADER = """\
# Inputs of scripts/build, verified by sha256 before use (build/lock.py).
# Regenerate with `scripts/build --update-lock`, review the diff, commit.
# kind   name  arch  version  sha256  [file]
"""


class LockError(RuntimeError):
    """A lock problem, already phrased as `<operation> <object>: <cause>; <fix>`."""


class Gone(LockError):
    """The mirror no longer serves a locked version (the default build then follows the mirror)."""


class Entry:
    def __init__(self, kind, name, arch, version, sha256, file=None):
        self.kind, self.name, self.arch, self.version, self.sha256, self.file = (
            kind, name, arch, version, sha256, file)

    @property
    def label(self):
        return f"{self.name}:{self.arch}={self.version}" if self.kind == "deb" else f"{self.name}={self.version}"

    @property
    def key(self):
        """What the lock pins one input of: the same key names it before and after a drift."""
        return (self.kind, self.name, self.arch)

    def line(self):
        fields = [self.kind, self.name, self.arch, self.version, self.sha256] + ([self.file] if self.file else [])
        return " ".join(fields) + "\n"


def parse(text, where="build/inputs.lock"):
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if fields[0] not in ("deb", "src", "sdist") or len(fields) not in (5, 6) or len(fields[4]) != 64:
            raise LockError(f"read {where}:{number}: not 'kind name arch version sha256 [file]'; "
                            "fix the line or regenerate it with scripts/build --update-lock")
        entries.append(Entry(*fields))
    return entries


def load(path=LOCK):
    try:
        return parse(Path(path).read_text(), Path(path).name)
    except FileNotFoundError:
        raise LockError(f"read {path}: missing; create it with scripts/build --update-lock") from None


def render(entries):
    return HEADER + "".join(e.line() for e in entries)


def debs(entries, arch):
    """The deb entries unpacked into arch's sysroot (its own and the arch-independent ones)."""
    return [e for e in entries if e.kind == "deb" and e.arch in (arch, "all")]


def for_arch(entries, arch):
    """Every entry one arch's build uses: its debs, the arch-independent ones, the sources."""
    return [e for e in entries if e.kind != "deb" or e.arch in (arch, "all")]


def find(entries, kind, name):
    for e in entries:
        if e.kind == kind and e.name == name:
            return e
    raise LockError(f"read build/inputs.lock: no {kind} {name}; regenerate it with scripts/build --update-lock")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(argv, cwd=None, env=None):
    return subprocess.run(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def stored(entry, cache):
    """Where entry's file lives in the cache (named by its sha256: a wrong hash never hits it)."""
    return Path(cache) / "inputs" / f"{entry.sha256}-{entry.file or entry.name + '.deb'}"


def fetch(entry, cache, log, offline=False):
    """Local path of entry's file, verified against its locked sha256.

    offline: never download (a build from a saved inputs archive); a missing file is Gone.
    """
    store = Path(cache) / "inputs"
    path = stored(entry, cache)
    if path.exists() and sha256_file(path) == entry.sha256:
        return path
    if offline:
        raise Gone(f"read {entry.label}: not in the inputs archive; save the inputs of a build that used it")
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=store))
    try:
        # apt-get download/source drop privileges to _apt when they can: let it write.
        os.chmod(tmp, 0o777)
        log(f"fetching {entry.label}")
        got = {"deb": _fetch_deb, "src": _fetch_src, "sdist": _fetch_sdist}[entry.kind](entry, tmp, cache)
        digest = sha256_file(got)
        if digest != entry.sha256:
            raise LockError(f"verify {entry.label}: sha256 {digest[:16]}… is not the locked "
                            f"{entry.sha256[:16]}…; the mirror serves different bytes under that version: "
                            "check build/inputs.lock, or run scripts/build --update-lock if the change is intended")
        os.replace(got, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _gone(entry, detail):
    last = (detail.strip().splitlines() or ["no output"])[-1]
    return Gone(f"fetch {entry.label}: the package mirror no longer serves it ({last}); "
                "run scripts/build --update-lock, review and commit build/inputs.lock")


def _fetch_deb(entry, tmp, cache):
    arch = "amd64" if entry.arch == "all" else entry.arch
    proc = _run(["apt-get", "download", "-q", f"{entry.name}:{arch}={entry.version}"], cwd=tmp)
    found = sorted(tmp.glob("*.deb"))
    if proc.returncode != 0 or len(found) != 1:
        raise _gone(entry, proc.stderr)
    return found[0]


def _fetch_src(entry, tmp, cache):
    # Security-update .dsc files may be gone while the orig tarball is still
    # served: apt-get source fails as a whole, so the one locked file counts.
    proc = _run(apt_source_argv(cache) + ["source", "--download-only", f"{entry.name}={entry.version}"], cwd=tmp)
    got = tmp / entry.file
    if not got.exists():
        raise _gone(entry, proc.stderr)
    return got


def _fetch_sdist(entry, tmp, cache):
    proc = _run([*pip(), "download", "-q", "--no-deps", "--no-binary", ":all:", "--dest", str(tmp),
                 f"{entry.name}=={entry.version}"], env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    got = tmp / entry.file
    if not got.exists():
        raise _gone(entry, proc.stderr)
    return got


def pip():
    """pip, to download sdists with (never to install): Debian's python3-pip, run by
    the build's python3.11; it reads the machine's pip configuration for its index."""
    return ["/usr/bin/python3.11", "-m", "pip"]


def apt_source_argv(cache):
    """apt-get with a private deb-src index mirroring the machine's deb sources.

    The machine's apt configuration is left alone: the source index lives in
    the cache, and the mirror URIs are read from /etc/apt at run time.
    """
    base = Path(cache).resolve() / "apt-src"
    parts = base / "sources.list.d"
    lists = base / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        text = src.read_text()
        if "Types: deb" in text:
            (parts / src.name).write_text(text.replace("Types: deb\n", "Types: deb-src\n"))
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        lines = [line.replace("deb ", "deb-src ", 1) for line in legacy.read_text().splitlines()
                 if line.startswith("deb ")]
        (parts / "legacy.list").write_text("".join(line + "\n" for line in lines))
    (base / "sources.list").write_text("")
    argv = ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={base / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={parts}",
            "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={base / 'cache'}"]
    if not any(lists.glob("*Sources*")):
        (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        proc = _run(argv + ["update"])
        if proc.returncode != 0:
            raise LockError(f"update the deb-src index in {base}: apt-get update failed "
                            f"({(proc.stderr.strip().splitlines() or ['?'])[-1]}); check the apt sources")
    return argv


# -- --update-lock -----------------------------------------------------------

def candidates(names, arch):
    """{name: (version, sha256)} of the versions apt would install today, from its signed index
    (one apt-cache call: each loads the whole index, ~1 s)."""
    proc = _run(["apt-cache", "show", "--no-all-versions", *(f"{name}:{arch}" for name in names)])
    found = {}
    for stanza in proc.stdout.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Package") in names and "Version" in fields and len(fields.get("SHA256", "")) == 64:
            found.setdefault(fields["Package"], (fields["Version"].strip(), fields["SHA256"].strip()))
    return found


def candidate(name, arch):
    """(version, sha256) of the version apt would install today, from its signed index."""
    try:
        return candidates((name,), arch)[name]
    except KeyError:
        raise LockError(f"look up {name}:{arch}: apt-cache knows no such package; run apt-get update") from None


def _candidate(name, arch):
    return candidate(name, arch)[0]


def update(cache, log):
    """The lock text for today's mirror (both arches on the same versions)."""
    _run(["apt-get", "update", "-q"])
    entries = []
    for name in DEBS:
        versions = {arch: _candidate(name, arch) for arch in ARCHES}
        if len(set(versions.values())) != 1:
            raise LockError(f"lock {name}: the mirror has {versions} (arches differ, mid-sync?); "
                            "retry scripts/build --update-lock later")
        for arch in ARCHES:
            entries.append(_locked(Entry("deb", name, arch, versions[arch], "0" * 64), cache, log))
    for name in DEBS_ALL:
        entries.append(_locked(Entry("deb", name, "all", _candidate(name, "amd64"), "0" * 64), cache, log))
    entries.append(source_entry(cache, SOURCE[0], next(e.version for e in entries if e.name == SOURCE[1])))
    for name in SDISTS:
        entries.append(_locked_sdist(name, cache, log))
    return render(entries)


def changes(old, new):
    """Changelog-level lines `name: old → new` between two locks (one line per package when
    every arch moves alike, else per NAME:ARCH; added and removed inputs too)."""
    def versions(entries):
        out = {}
        for e in entries:
            out.setdefault((e.kind, e.name), {})[e.arch] = e.version
        return out

    before, after = versions(old), versions(new)
    lines = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[1], k[0])):
        was, now = before.get(key, {}), after.get(key, {})
        if was == now:
            continue
        name = key[1] + (" (source)" if key[0] == "src" else "")
        if len(set(was.values())) <= 1 and len(set(now.values())) <= 1 and (not was or not now or set(was) == set(now)):
            lines.append(f"{name}: {next(iter(was.values()), '(new)')} → {next(iter(now.values()), '(removed)')}")
            continue
        for arch in sorted(set(was) | set(now)):
            if was.get(arch) != now.get(arch):
                lines.append(f"{name}:{arch}: {was.get(arch, '(new)')} → {now.get(arch, '(removed)')}")
    return lines


def newer_on_mirror(entries):
    """[(name, locked, candidate)] for the debs whose apt candidate (today's index, no download)
    is newer than the lock: the security updates a build from the lock would miss."""
    out, seen = [], set()
    debs = [e for e in entries if e.kind == "deb" and e.arch in ("amd64", "all")]
    today = candidates(tuple(dict.fromkeys(e.name for e in debs)), "amd64")
    for e in debs:
        if e.name in seen or e.name not in today:
            continue
        seen.add(e.name)
        version = today[e.name][0]
        newer = subprocess.run(["dpkg", "--compare-versions", version, "gt", e.version]).returncode == 0
        if newer:
            out.append((e.name, e.version, version))
    return out


def _locked(entry, cache, log):
    tmp = Path(tempfile.mkdtemp(prefix=".lock-", dir=_mkdir(Path(cache) / "inputs")))
    try:
        os.chmod(tmp, 0o777)
        log(f"locking {entry.label}")
        got = _fetch_deb(entry, tmp, cache)
        entry.sha256 = sha256_file(got)
        # Keep it: the next build uses exactly this file.
        os.replace(got, Path(cache) / "inputs" / f"{entry.sha256}-{entry.name}.deb")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def source_entry(cache, name, version):
    """The orig tarball of a source package version, hash from apt's own (signed) index."""
    argv = apt_source_argv(cache)
    _run(argv + ["update"])
    proc = _run(argv + ["--print-uris", "source", f"{name}={version}"])
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and ".orig.tar." in fields[1] and fields[3].startswith("SHA256:"):
            return Entry("src", name, "source", version, fields[3].split(":", 1)[1], fields[1])
    raise LockError(f"lock {name}={version}: apt's source index has no orig tarball for it "
                    f"({proc.stderr.strip()[-200:]}); check the deb-src index")


def _locked_sdist(name, cache, log):
    tmp = Path(tempfile.mkdtemp(prefix=".lock-", dir=_mkdir(Path(cache) / "inputs")))
    try:
        proc = _run([*pip(), "download", "-q", "--no-deps", "--no-binary", ":all:", "--dest", str(tmp), name],
                    env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        found = sorted(tmp.glob(f"{name}-*.tar.gz"))
        if proc.returncode != 0 or len(found) != 1:
            raise LockError(f"lock sdist {name}: pip download failed ({proc.stderr.strip()[-200:]})")
        version = found[0].name[len(name) + 1:-len(".tar.gz")]
        log(f"locking {name}={version}")
        return Entry("sdist", name, "any", version, sha256_file(found[0]), found[0].name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path
