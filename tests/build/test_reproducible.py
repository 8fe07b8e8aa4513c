"""Two builds of the same commit are byte-identical, whatever directory they ran in.

Each build runs in its own fresh clone of HEAD (at different paths), so stray
absolute paths, timestamps, hash seeds or file-order effects all show up as a
byte difference.  SOURCE_DATE_EPOCH comes from the commit, as in CI.  The second
build starts from an empty SHIM_CACHE, as a new machine on another day would:
every input is fetched again and must match build/inputs.lock, and each binary
lists exactly that lock.
"""

import hashlib
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

# Builds from scratch (clones, empty caches, both arches): minutes on a loaded 2-core
# machine, longer than the suite's 300 s default (fixture set-up counts too).
pytestmark = pytest.mark.timeout(1500)

REPO = Path(__file__).resolve().parents[2]

ARCHES = ("amd64", "arm64")


def _clone(dest):
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)], check=True,
                   stdin=subprocess.DEVNULL, timeout=300)
    return dest


def _head(repo):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, text=True,
                          capture_output=True).stdout.strip()


def _effective_lock(archive):
    with tarfile.open(archive) as tar:
        return tar.extractfile("shim-inputs/inputs.lock").read().decode()


def test_two_locked_builds_are_identical(tmp_path, run_build):
    """Two `--locked` builds of one commit and one lock.  The lock is the committed one while the
    mirror serves it; once the mirror has moved on, the lock the first (default) build actually
    used, written into both clones, so the test keeps testing reproducibility on any day."""
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    outputs = []
    first = _clone(tmp_path / "first")
    commit = _head(first)  # the same commit twice, even if someone commits meanwhile
    run_build("--arch", "all", "--save-inputs", str(tmp_path / "inputs.tar"), cwd=first, env=env)
    used = _effective_lock(tmp_path / "inputs.tar")
    drifted = [line.split()[0] for line in used.splitlines() if line.startswith("# drift:")]
    for name in ("first", "second-with-a-longer-path"):
        clone = tmp_path / name
        if name != "first":
            env = {**env, "SHIM_CACHE": str(tmp_path / "empty-cache")}
            _clone(clone)
            subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
        if drifted or name != "first":
            (clone / "build/inputs.lock").write_text(used)
            run_build("--arch", "all", "--locked", cwd=clone, env=env)
        outputs.append({p.name: p.read_bytes() for p in sorted((clone / "dist").iterdir())})
    first, second = outputs
    # Everything scripts/build writes to dist/ must be reproducible, whatever else it adds.
    assert {"SHA256SUMS", "shim-linux-amd64", "shim-linux-arm64"} <= set(first)
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], (
            f"{name} differs: {hashlib.sha256(first[name]).hexdigest()} "
            f"vs {hashlib.sha256(second[name]).hexdigest()}")
    info = json.loads(_archive_member(tmp_path / "first/dist/shim-linux-amd64", "shim/_buildinfo.json"))
    assert info["commit"] == _head(tmp_path / "first")
    assert info["freezer"] == "static" and info["arch"] == "amd64"
    locked = {}
    for line in (tmp_path / "first/build/inputs.lock").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and (fields[0] != "deb" or fields[2] in ("amd64", "all")):
            label = f"{fields[1]}:{fields[2]}={fields[3]}" if fields[0] == "deb" else f"{fields[1]}={fields[3]}"
            locked[label] = fields[4]
    assert info["deps"]["lock"] == locked
    assert info["build"] == "locked" and not info["drift"]


def _archive_member(path, member):
    with zipfile.ZipFile(path) as zf:
        return zf.read(member)
