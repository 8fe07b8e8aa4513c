"""A fresh machine on a later day: an empty SHIM_CACHE and a lock the mirror has moved past.

A warm cache cannot fool these tests: each runs in a fresh clone whose
build/inputs.lock names .deb versions the mirror does not serve (every locked
binary package gets a `+gone1` suffix and a hash no file has), with a new,
empty SHIM_CACHE.  The default build follows the mirror: it succeeds, prints one
`drift:` line per input, and the binary says so (`shim version`: "build":
"drifted", with the versions used).  `scripts/build --locked` refuses with the
one-line error instead.
"""

import json
import os
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


def _stale_clone(tmp_path):
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    path = clone / "build/inputs.lock"
    stale = []
    for e in lock.load(path):
        if e.kind == "deb":
            e = lock.Entry(e.kind, e.name, e.arch, e.version + "+gone1", "1" * 64, e.file)
        stale.append(e)
    path.write_text(lock.render(stale))
    return clone, stale


def _build(clone, cache, *args):
    env = {**os.environ, "SHIM_CACHE": str(cache)}
    return subprocess.run([str(clone / "scripts/build"), "--arch", "amd64", "--dist", str(clone / "dist"), *args],
                          cwd=clone, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                          env=env)


def test_default_build_follows_the_mirror_and_locked_refuses(tmp_path):
    clone, stale = _stale_clone(tmp_path)
    cache = tmp_path / "empty-cache"
    first = next(e for e in stale if e.kind == "deb" and e.arch == "amd64")

    strict = _build(clone, cache, "--locked")
    assert strict.returncode == 1, strict.stderr[-2000:]
    errors = [line for line in strict.stderr.splitlines() if line.startswith("shim:")]
    assert errors == [errors[0]] and errors[0].startswith(
        f"shim: build: fetch {first.label}: the package mirror no longer serves it"), strict.stderr[-2000:]
    assert "scripts/build --update-lock" in errors[0]
    assert "Traceback" not in strict.stderr
    assert not (clone / "dist/shim-linux-amd64").exists()

    proc = _build(clone, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    drift = re.findall(r"^drift: (\S+):(\S+) locked (\S+) → used (\S+)$", proc.stderr, re.M)
    wanted = [e for e in stale if e.kind == "deb" and e.arch in ("amd64", "all")]
    assert sorted(f"{n}:{a}" for n, a, _, _ in drift) == sorted(f"{e.name}:{e.arch}" for e in wanted)
    for name, arch, old, new in drift:
        # What apt would install today (its candidate), the same version for every arch.
        assert old.endswith("+gone1") and new == lock.candidate(name, "amd64" if arch == "all" else arch)[0]

    report = json.loads(subprocess.run([str(clone / "dist/shim-linux-amd64"), "version"], check=True,
                                       capture_output=True, text=True).stdout)
    assert report["build"] == "drifted"
    assert set(report["drift"]) == {f"{e.name}:{e.arch}" for e in wanted}
    assert {k: v["used"] for k, v in report["drift"].items()} == {f"{n}:{a}": new for n, a, _, new in drift}
    assert report["components"]["glibc"] == report["drift"]["libc6-dev:amd64"]["used"]
    used = report["build_deps"]["lock"]
    # Every used file is recorded by the sha256 it was verified against, and is in the new cache.
    for label, digest in used.items():
        assert len(digest) == 64 and digest != "1" * 64, label
        assert list((cache / "inputs").glob(f"{digest}-*")), label
