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
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ARCHES = ("amd64", "arm64")


def _clone(dest):
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)], check=True,
                   stdin=subprocess.DEVNULL, timeout=300)
    return dest


def _head(repo):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, text=True,
                          capture_output=True).stdout.strip()


def test_two_builds_are_identical(tmp_path, run_build):
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    outputs = []
    commit = None
    for name in ("first", "second-with-a-longer-path"):
        if name != "first":
            env = {**env, "SHIM_CACHE": str(tmp_path / "empty-cache")}
        clone = _clone(tmp_path / name)
        # The same commit twice, even if someone commits meanwhile.
        commit = commit or _head(clone)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
        run_build("--arch", "all", cwd=clone, env=env)
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
    # A drifted input (the mirror no longer serves the locked version) is listed as used, and named.
    for label, drift in info.get("drift", {}).items():
        name = label.split(":", 1)[0]
        old = next(k for k in locked if k.startswith(f"{label}=") or k == f"{name}={drift['locked']}")
        assert locked.pop(old) == drift["locked_sha256"]
        new = old.replace(f"={drift['locked']}", f"={drift['used']}")
        locked[new] = drift["used_sha256"]
    assert info["deps"]["lock"] == locked
    assert info["build"] == ("drifted" if info.get("drift") else "locked")


def _archive_member(path, member):
    with zipfile.ZipFile(path) as zf:
        return zf.read(member)
