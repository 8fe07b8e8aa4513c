"""build/inputs.lock: every input is pinned for both arches and checked by hash before use.

Each failing build runs in a fresh clone with one lock line changed, so the
repository's own lock and dist/ are never touched; the download cache is shared
(files in it are named by their hash, so a wrong hash can never hit it).
"""

import re
import subprocess
import sys

import pytest

from support import REPO

sys.path.insert(0, str(REPO / "build"))
import lock  # noqa: E402

# Builds from scratch (clones, empty caches, both arches): minutes on a loaded 2-core
# machine, longer than the suite's 300 s default (fixture set-up counts too).
pytestmark = pytest.mark.timeout(900)

TIMEOUT = 900


def _entries():
    return lock.load(REPO / "build/inputs.lock")


def test_both_arches_pin_the_same_versions():
    entries = _entries()
    for name in lock.DEBS:
        versions = {e.arch: e.version for e in entries if e.kind == "deb" and e.name == name}
        assert set(versions) == set(lock.ARCHES), f"{name} not locked for every arch: {versions}"
        assert len(set(versions.values())) == 1, f"{name} differs between arches: {versions}"
    assert lock.find(entries, "deb", "libc6-dev")  # the target arch's glibc, not the cross toolchain's
    assert lock.find(entries, "src", "python3.11").version == lock.find(entries, "deb", "libpython3.11-dev").version
    assert lock.find(entries, "sdist", "setproctitle")


def _build_with(tmp_path, edit, *args):
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    path = clone / "build/inputs.lock"
    path.write_text(edit(path.read_text()))
    return subprocess.run([str(clone / "scripts/build"), "--arch", "arm64", "--dist", str(tmp_path / "dist"), *args],
                          cwd=clone, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def _errors(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("shim:")]


def test_a_wrong_hash_fails_the_build_in_one_line(tmp_path):
    entry = next(e for e in _entries() if e.name == "libssl-dev" and e.arch == "arm64")
    wrong = entry.sha256[::-1]
    proc = _build_with(tmp_path, lambda text: text.replace(entry.sha256, wrong))
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = _errors(proc)
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"shim: build: verify libssl-dev:arm64={entry.version}: sha256 ")
    assert "--update-lock" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dist/shim-linux-arm64").exists()


def test_locked_names_a_version_the_mirror_no_longer_serves(tmp_path):
    """--locked (a release build) refuses to follow the mirror (tests/build/test_fresh_machine.py: the default does)."""
    entry = next(e for e in _entries() if e.name == "zlib1g-dev" and e.arch == "arm64")
    gone = entry.version + "+gone1"
    proc = _build_with(tmp_path, lambda text: re.sub(
        rf"^deb zlib1g-dev arm64 \S+ {entry.sha256}", f"deb zlib1g-dev arm64 {gone} {'1' * 64}", text, flags=re.M),
        "--locked")
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = _errors(proc)
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"shim: build: fetch zlib1g-dev:arm64={gone}: the package mirror no longer serves it")
    assert "scripts/build --update-lock" in errors[0]


def test_update_lock_pins_the_same_bytes_for_the_same_versions(tmp_path):
    """--update-lock in a clone: both arches, every input, and for every version the mirror still
    serves, exactly the committed hash (a newer version is allowed: the mirror moves on)."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    proc = subprocess.run([str(clone / "scripts/build"), "--update-lock"], cwd=clone, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = lock.load(clone / "build/inputs.lock")
    old = _entries()
    # stdout is the changelog: one `name: old → new` line per package that moved, nothing else.
    moved = sorted({e.name for e in new} - {e.name for e in new if any(
        o.key == e.key and o.version == e.version for o in old)})
    if moved:
        assert sorted(line.split(":")[0].split(" ")[0] for line in proc.stdout.splitlines()) == moved, proc.stdout
        assert all(" → " in line for line in proc.stdout.splitlines())
    else:
        assert proc.stdout == "no changes: the lock names today's versions\n"
    key = lambda e: (e.kind, e.name, e.arch)  # noqa: E731
    assert sorted(map(key, new)) == sorted(map(key, old))
    committed = {key(e): e for e in old}
    for entry in new:
        if entry.version == committed[key(entry)].version:
            assert entry.sha256 == committed[key(entry)].sha256, entry.label


def test_changes_are_one_line_per_package_old_to_new():
    entry = lock.Entry
    old = [entry("deb", "zlib1g-dev", a, "1:1.2.13.dfsg-1", "0" * 64) for a in lock.ARCHES]
    old += [entry("deb", "linux-libc-dev", a, "6.1.192-2", "0" * 64) for a in lock.ARCHES]
    old += [entry("src", "python3.11", "source", "3.11.2-6+deb12u9", "0" * 64, "p.orig.tar.gz")]
    new = [entry("deb", "zlib1g-dev", a, "1:1.2.13.dfsg-1+deb12u1", "1" * 64) for a in lock.ARCHES]
    new += [entry("deb", "linux-libc-dev", "amd64", "6.1.192-3", "1" * 64),
            entry("deb", "linux-libc-dev", "arm64", "6.1.192-2", "0" * 64)]
    new += [entry("src", "python3.11", "source", "3.11.2-6+deb12u10", "0" * 64, "p.orig.tar.gz"),
            entry("sdist", "setproctitle", "any", "1.3.8", "2" * 64, "s.tar.gz")]
    assert lock.changes(old, new) == [
        "linux-libc-dev:amd64: 6.1.192-2 → 6.1.192-3",
        "python3.11 (source): 3.11.2-6+deb12u9 → 3.11.2-6+deb12u10",
        "setproctitle: (new) → 1.3.8",
        "zlib1g-dev: 1:1.2.13.dfsg-1 → 1:1.2.13.dfsg-1+deb12u1",
    ]
    assert lock.changes(old, old) == []


def test_check_lock_warns_but_never_fails(tmp_path):
    """scripts/test runs `scripts/build --check-lock`: a lock older than the mirror gets one warning per
    package and exit 0; a lock at today's versions gets none."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    path = clone / "build/inputs.lock"
    entries = lock.load(path)
    current = [lock.Entry(e.kind, e.name, e.arch, lock.candidate(e.name, "amd64")[0] if e.kind == "deb" else e.version,
                          e.sha256, e.file) for e in entries]
    path.write_text(lock.render(current))
    check = [str(clone / "scripts/build"), "--check-lock"]
    proc = subprocess.run(check, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    old = [lock.Entry(e.kind, e.name, e.arch, "0.1-1" if e.name == "linux-libc-dev" else e.version, e.sha256, e.file)
           for e in current]
    path.write_text(lock.render(old))
    proc = subprocess.run(check, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    today = lock.candidate("linux-libc-dev", "amd64")[0]
    assert warnings[0] == f"warning: build/inputs.lock: linux-libc-dev 0.1-1 is older than the mirror's {today}"
    assert len(warnings) == 2 and "scripts/build --update-lock" in warnings[1]
    assert "== lock" in (REPO / "scripts/test").read_text() and "--check-lock" in (REPO / "scripts/test").read_text()
