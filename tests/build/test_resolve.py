"""build/resolve.py's policy, with a recording fake mirror (no apt, no network; the real mirror is
exercised by test_fresh_machine.py): which inputs drift, together, and what is recorded."""

import sys

import pytest

from support import REPO

sys.path.insert(0, str(REPO / "build"))
import lock  # noqa: E402
import resolve  # noqa: E402

E = lock.Entry
LOCKED = [
    E("deb", "libc6-dev", "amd64", "2.36-9+deb12u14", "a" * 64),
    E("deb", "libc6-dev", "arm64", "2.36-9+deb12u14", "b" * 64),
    E("deb", "libpython3.11-dev", "amd64", "3.11.2-6+deb12u9", "c" * 64),
    E("deb", "libpython3.11-dev", "arm64", "3.11.2-6+deb12u9", "d" * 64),
    E("deb", "ca-certificates", "all", "20250419~deb12u2", "e" * 64),
    E("src", "python3.11", "source", "3.11.2-6+deb12u9", "f" * 64, "python3.11_3.11.2.orig.tar.gz"),
    E("sdist", "setproctitle", "any", "1.3.8", "1" * 64, "setproctitle-1.3.8.tar.gz"),
]


class FakeMirror:
    """Serves `served` {(name, arch): (version, sha256)}; records fetches and index refreshes."""

    def __init__(self, served, cached=()):
        self.served, self.cached, self.fetched, self.refreshes = served, set(cached), [], 0

    def fetch(self, entry, cache, log, offline=False):
        if entry.sha256 in self.cached:
            return f"/cache/{entry.sha256}"
        if offline:
            raise lock.Gone(f"read {entry.label}: not in the cache")
        if entry.kind != "deb" or self.served.get((entry.name, entry.arch), (None,))[0] == entry.version:
            self.fetched.append(entry.label)
            self.cached.add(entry.sha256)
            return f"/cache/{entry.sha256}"
        raise lock.Gone(f"fetch {entry.label}: the package mirror no longer serves it (E: gone); run …")

    def candidate(self, name, arch):
        return self.served[(name, "all" if name == "ca-certificates" else arch)]

    def source_entry(self, cache, name, version):
        return E("src", name, "source", version, "9" * 64, "python3.11_3.11.2.orig.tar.gz")


@pytest.fixture()
def mirror(monkeypatch):
    def install(served, cached=()):
        fake = FakeMirror(served, cached)
        monkeypatch.setattr(lock, "fetch", fake.fetch)
        monkeypatch.setattr(lock, "candidate", fake.candidate)
        monkeypatch.setattr(lock, "source_entry", fake.source_entry)
        monkeypatch.setattr(resolve._Mirror, "refresh", lambda self: setattr(fake, "refreshes", fake.refreshes + 1))
        return fake
    return install


def _served(moved=None):
    out = {(e.name, e.arch): (e.version, e.sha256) for e in LOCKED if e.kind == "deb"}
    out.update(moved or {})
    return out


def test_nothing_gone_is_a_locked_build(mirror):
    fake = mirror(_served())
    got = resolve.resolve(LOCKED, ("amd64", "arm64"), "/c", lambda m: None)
    assert got.state == "locked" and got.drifts == [] and got.entries == LOCKED
    assert fake.refreshes == 0


def test_a_gone_deb_drifts_every_arch_together_and_the_source_follows_libpython(mirror, capsys):
    new = "3.11.2-6+deb12u10"
    fake = mirror(_served({("libpython3.11-dev", "amd64"): (new, "2" * 64),
                             ("libpython3.11-dev", "arm64"): (new, "3" * 64)}))
    got = resolve.resolve(LOCKED, ("amd64", "arm64"), "/c", lambda m: None)
    assert got.state == "drifted"
    assert [d.line() for d in got.drifts] == [
        f"drift: libpython3.11-dev:amd64 locked 3.11.2-6+deb12u9 → used {new}",
        f"drift: libpython3.11-dev:arm64 locked 3.11.2-6+deb12u9 → used {new}",
        f"drift: python3.11:source locked 3.11.2-6+deb12u9 → used {new}",
    ]
    assert capsys.readouterr().err.splitlines() == [d.line() for d in got.drifts]
    assert fake.refreshes == 1
    used = {e.key: e for e in got.entries}
    assert used[("deb", "libpython3.11-dev", "arm64")].sha256 == "3" * 64  # the index's hash, verified on fetch
    assert got.drift_record("amd64") == {
        "libpython3.11-dev:amd64": {"locked": "3.11.2-6+deb12u9", "used": new, "locked_sha256": "c" * 64,
                                    "used_sha256": "2" * 64},
        "python3.11:source": {"locked": "3.11.2-6+deb12u9", "used": new, "locked_sha256": "f" * 64,
                              "used_sha256": "9" * 64}}
    assert "# drift: libpython3.11-dev:amd64 locked" in got.lock_text()
    assert lock.parse(got.lock_text()) and [e.version for e in lock.parse(got.lock_text())][2] == new


def test_a_warm_drifted_rebuild_needs_no_index_refresh(mirror):
    fake = mirror(_served({("libc6-dev", "amd64"): ("2.36-9+deb12u15", "4" * 64),
                             ("libc6-dev", "arm64"): ("2.36-9+deb12u15", "5" * 64)}),
                  cached={"4" * 64, "5" * 64} | {e.sha256 for e in LOCKED if e.name != "libc6-dev"})
    got = resolve.resolve(LOCKED, ("amd64", "arm64"), "/c", lambda m: None)
    assert got.state == "drifted" and fake.refreshes == 0 and fake.fetched == []  # nothing downloaded


def test_arches_on_different_versions_are_refused(mirror):
    mirror(_served({("libc6-dev", "amd64"): ("2.36-9+deb12u15", "4" * 64),
                      ("libc6-dev", "arm64"): ("2.36-9+deb12u16", "5" * 64)}))
    with pytest.raises(lock.LockError, match=r"^follow the mirror for libc6-dev: it serves different versions"):
        resolve.resolve(LOCKED, ("amd64", "arm64"), "/c", lambda m: None)


def test_strict_refuses_with_the_one_line_error(mirror):
    mirror(_served({("libc6-dev", "amd64"): ("2.36-9+deb12u15", "4" * 64)}))
    with pytest.raises(lock.Gone, match=r"^fetch libc6-dev:amd64=2.36-9\+deb12u14: the package mirror no longer"):
        resolve.resolve(LOCKED, ("amd64",), "/c", lambda m: None, "strict")


def test_one_arch_resolves_only_its_inputs(mirror):
    mirror(_served())
    got = resolve.resolve(LOCKED, ("arm64",), "/c", lambda m: None)
    assert {e.arch for e in got.entries if e.kind == "deb"} == {"arm64", "all"}


def test_the_archive_policy_takes_the_saved_entries_and_never_downloads(mirror):
    saved = [E("deb", "libc6-dev", a, "2.36-9+deb12u15", c * 64) for a, c in (("amd64", "4"), ("arm64", "5"))]
    fake = mirror({}, cached={"4" * 64, "5" * 64} | {e.sha256 for e in LOCKED if e.name != "libc6-dev"})
    got = resolve.resolve(LOCKED, ("amd64", "arm64"), "/c", lambda m: None, "archive",
                          saved + [e for e in LOCKED if e.name != "libc6-dev"], "inputs.tar")
    assert fake.fetched == [] and [d.line() for d in got.drifts][0].endswith("→ used 2.36-9+deb12u15")
    with pytest.raises(lock.LockError, match=r"^read inputs.tar: it holds no deb libc6-dev:amd64"):
        resolve.resolve(LOCKED, ("amd64",), "/c", lambda m: None, "archive",
                        [e for e in LOCKED if e.name != "libc6-dev"], "inputs.tar")
