"""Which input files a build uses: the locked ones while they can be had, today's when not.

Debian's mirrors keep only the newest version of each package per suite, so a
lock of exact binary-package versions goes stale at the next security update.
Three policies decide what happens to a locked input that cannot be fetched:

    follow   (default)      take the version the mirror serves today (apt's
                            candidate, the same for every arch), verified by the
                            sha256 in apt's signed index; print one
                            `drift: NAME:ARCH locked OLD → used NEW` line
    strict   (--locked)     fail with the one-line `fetch …: the package mirror
                            no longer serves it` error
    archive  (--inputs F)   take the file the saved inputs archive holds for it;
                            nothing is downloaded

The result (`Resolution`) lists the entries actually used, in lock order, and
the drifts; build.py records both in the binary (shim version: `"build":
"drifted"`) and --save-inputs writes them as the archive's effective lock.
PyPI sdists and Debian orig tarballs are never deleted, so only .debs (and the
source package version that follows libpython3.11-dev) can drift.
"""

import subprocess
import sys
from pathlib import Path

import lock

POLICIES = ("follow", "strict", "archive")


class Drift:
    """One input whose locked version could not be had, and what was used instead."""

    def __init__(self, locked, used):
        self.locked, self.used = locked, used

    def line(self):
        return f"drift: {self.locked.name}:{self.locked.arch} locked {self.locked.version} → used {self.used.version}"

    def record(self):
        return {"locked": self.locked.version, "used": self.used.version,
                "locked_sha256": self.locked.sha256, "used_sha256": self.used.sha256}


class Resolution:
    """The inputs one build used: `entries` (lock order), `drifts`, and `paths` (entry key -> file)."""

    def __init__(self, locked, entries, drifts, paths):
        self.locked, self.entries, self.drifts, self.paths = locked, entries, drifts, paths

    @property
    def state(self):
        return "drifted" if self.drifts else "locked"

    def drift_record(self, arch=None):
        """{NAME:ARCH: {locked, used, …}} for the inputs of arch (all when None)."""
        return {f"{d.locked.name}:{d.locked.arch}": d.record() for d in self.drifts
                if arch is None or d.locked.kind != "deb" or d.locked.arch in (arch, "all")}

    def lock_text(self):
        """The effective lock: build/inputs.lock as it would read if it had named what was used."""
        notes = "".join(f"# {d.line()}\n" for d in self.drifts)
        return lock.render(self.entries) + notes


def _groups(entries, arches):
    """The deb entries the arches need, grouped by package (every arch of one package drifts together)."""
    groups = {}
    for e in entries:
        if e.kind == "deb" and e.arch in (*arches, "all"):
            groups.setdefault(e.name, []).append(e)
    return groups


class _Mirror:
    """Today's candidate versions, read from apt's (signed) index; refreshed once per build."""

    def __init__(self, cache, log):
        self.cache, self.log, self.refreshed = cache, log, False

    def refresh(self):
        if not self.refreshed:
            self.log("a locked input is gone from the mirror: apt-get update, then following the mirror")
            subprocess.run(["apt-get", "update", "-q"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=False)
            self.refreshed = True

    def deb(self, entry):
        arch = "amd64" if entry.arch == "all" else entry.arch
        version, sha256 = lock.candidate(entry.name, arch)
        return lock.Entry("deb", entry.name, entry.arch, version, sha256)

    def src(self, entry, version):
        return lock.source_entry(self.cache, entry.name, version)


class _Archive:
    """The entries of a saved inputs archive (its effective lock): nothing is fetched."""

    def __init__(self, entries, where):
        self.by_key = {e.key: e for e in entries}
        self.where = where

    def refresh(self):
        pass

    def _get(self, entry):
        try:
            return self.by_key[entry.key]
        except KeyError:
            raise lock.LockError(f"read {self.where}: it holds no {entry.kind} {entry.name}:{entry.arch}; "
                                 "save the inputs of a build of this commit (scripts/build --save-inputs)") from None

    def deb(self, entry):
        return self._get(entry)

    def src(self, entry, version):
        return self._get(entry)


def _replace(name, group, source, cache, log, offline):
    """Today's entries for group, fetched: from apt's index as it is when their files are
    cached already (a warm rebuild needs no network), else after one apt-get update."""
    for attempt in (0, 1):
        if attempt:
            source.refresh()
        replaced = [source.deb(e) for e in group]
        versions = {r.version for r in replaced if r.arch != "all"}
        if len(versions) > 1:
            raise lock.LockError(f"follow the mirror for {name}: it serves different versions per arch "
                                 f"({', '.join(f'{r.arch} {r.version}' for r in replaced)}; mid-sync?); "
                                 "retry later")
        try:
            for r in replaced:
                lock.fetch(r, cache, log, offline=offline or not attempt)
            return replaced
        except lock.Gone:
            if attempt or offline:
                raise
    raise AssertionError("unreachable")


def resolve(locked, arches, cache, log, policy="follow", archive=None, where=None):
    """Fetch (verified) every input the arches need; return the Resolution.

    locked: build/inputs.lock's entries; archive: the entries of a saved inputs
    archive (policy "archive"), whose files are already in cache/inputs.
    """
    if policy not in POLICIES:
        raise ValueError(policy)
    offline = policy == "archive"
    source = _Archive(archive, where) if offline else _Mirror(cache, log)
    used, drifts, paths = {}, [], {}

    def take(entry, path):
        used[entry.key] = entry
        paths[entry.key] = path

    for name, group in _groups(locked, arches).items():
        try:
            for e in group:
                take(e, lock.fetch(e, cache, log, offline=offline))
        except lock.Gone:
            if policy == "strict":
                raise
            for old, new in zip(group, _replace(name, group, source, cache, log, offline), strict=True):
                take(new, lock.stored(new, cache))  # fetched and verified by _replace
                if new.version != old.version or new.sha256 != old.sha256:
                    drifts.append(Drift(old, new))
    for e in locked:
        if e.kind == "src":
            # The C modules come from the source of the libpython actually used.
            dev = used.get(("deb", lock.SOURCE[1], arches[0]))
            version = dev.version if dev else e.version
            if version == e.version:
                take(e, lock.fetch(e, cache, log, offline=offline))
            else:
                new = source.src(e, version)
                take(new, lock.fetch(new, cache, log, offline=offline))
                drifts.append(Drift(e, new))
        elif e.kind == "sdist":
            # PyPI never deletes or changes a released file: an sdist cannot drift.
            take(e, lock.fetch(e, cache, log, offline=offline))
    for d in drifts:
        print(d.line(), file=sys.stderr, flush=True)
    order = [e.key for e in locked if e.key in used]
    return Resolution(locked, [used[k] for k in order], drifts, {k: Path(paths[k]) for k in order})
