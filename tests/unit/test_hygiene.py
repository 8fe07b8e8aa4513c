"""One place each: the arch-name map, atomic writes, the boolean parser (issue 7, item 5).

A static scan of the repository: a second copy of any of these fails here, with
the file and line, until it uses the shared one.
"""

import re

from support import REPO

SOURCES = [p for p in REPO.rglob("*") if p.is_file() and (
    p.suffix == ".py" or p.parent.name == "scripts" and p.read_bytes()[:2] == b"#!")
    and not {".venv", ".work", ".git", "__pycache__", "tests"} & set(p.relative_to(REPO).parts)]


def _hits(pattern, allowed):
    found = []
    for path in SOURCES:
        rel = str(path.relative_to(REPO))
        if rel in allowed:
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_the_scan_sees_the_files_it_is_about():
    names = {str(p.relative_to(REPO)) for p in SOURCES}
    assert {"shim/util/platforms.py", "build/build.py", "scripts/bench", "scripts/images",
            "tools-image/build.py"} <= names


def test_one_arch_name_map():
    # A literal pairing of a uname machine with an OCI arch, in either direction.
    pattern = r"""["'](x86_64|aarch64)["']\s*:\s*["'](amd64|arm64)|["'](amd64|arm64)["']\s*:\s*["'](x86_64|aarch64)"""
    assert _hits(pattern, {"shim/util/platforms.py"}) == []


# Renames that are not a file's atomic write: directories swapped into place, the kubelet's
# ..data symlink swap, and a tarball another program (tar) wrote.
NOT_FILE_WRITES = {
    "shim/commands/install.py": "os.rename(tmp, target)",  # a version directory
    "build/sysroot.py": "os.rename(tree, root)",  # an unpacked package tree
    "shim/platform/sagemaker.py": ("os.rename(target, old)", "os.rename(staging, target)"),  # channels
    # ..data, and secret files staged beside each other and published together (all-or-nothing)
    "shim/sources/targets.py": ("os.rename(tmp_link, os.path.join(directory, DATA))",
                                "os.rename(tmp, path)"),
    "scripts/images": "os.replace(partial, tarball)",
    "build/lock.py": ("os.replace(got, path)", "os.replace(got, Path(cache)"),  # apt's verified downloads
    # an input taken out of a saved archive into the cache, kept only once its sha256 matches
    # ...and glibc's source files as apt-get source fetched (and verified) them, moved into the cache
    "build/inputs_archive.py": ("os.replace(tmp, target)", "os.replace(f, store / f.name)"),
    # log rotation: path -> path.1 -> path.2 (the records were appended, not written whole)
    "shim/streams/sinks/file.py": ("os.replace(src, ", "os.replace(self.path, self.path + "),
}


def test_one_atomic_write():
    # Temp file + fsync + rename of a *file* lives in shim.util.fsutil (write_atomically).
    hits = []
    for hit in _hits(r"os\.(rename|replace)\(", {"shim/util/fsutil.py"}):
        rel, _, code = hit.split(":", 2)
        allowed = NOT_FILE_WRITES.get(rel, ())
        if not any(a in code for a in ((allowed,) if isinstance(allowed, str) else allowed)):
            hits.append(hit)
    assert hits == []


def test_one_boolean_parser():
    # The words of a boolean appear once: shim.config.kinds.TRUE_WORDS / FALSE_WORDS.
    hits = _hits(r"""["']yes["'].*["']on["']|["']no["'].*["']off["']""", {"shim/config/kinds.py"})
    assert hits == []


def test_messages_never_show_python_reprs():
    # A value in a message is shown by shim.config.kinds.show (JSON-ish: "x", true, null),
    # never as a Python repr ('x', True, None).  __repr__ methods are for debugging only.
    allowed = set()
    hits = [h for h in _hits(r"!r\}", allowed) if h.startswith("shim/")
            and not re.search(r'return f"\w+\(', h)]  # a __repr__: Name(...)
    assert hits == []
