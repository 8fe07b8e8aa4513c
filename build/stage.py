"""The Python half of a frozen shim: a staging copy of shim/, its build info,
the stdlib modules it can import, and a reproducible zip of their .pyc files.

Pure where it can be: functions return bytes and lists; build.py writes them.
Runs under /usr/bin/python3.11 (the pyc magic must match libpython3.11.a) with
PYTHONHASHSEED=0, so two builds of one commit produce the same bytes.
"""

import ast
import datetime
import importlib._bootstrap_external as bootstrap_external
import io
import json
import modulefinder
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

# Never frozen: development tools no runtime path needs, reached only through
# optional imports (pydoc from help(), unittest from doctest...).
EXCLUDES = (
    "tkinter", "idlelib", "lib2to3", "test", "unittest", "doctest", "pydoc", "pydoc_data",
    "pdb", "ensurepip", "distutils", "turtle", "turtledemo", "venv", "sqlite3", "curses",
    "dbm", "xmlrpc", "multiprocessing", "setuptools", "pip",
)
# Imported by CPython itself during start-up; modulefinder cannot see them.
STARTUP = ("encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii",
           "encodings.latin_1", "encodings.utf_8_sig")


def git(repo, *args):
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, text=True,
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    return out.stdout.strip()


def source_date_epoch(repo):
    """SOURCE_DATE_EPOCH if set, else the commit time of HEAD."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        return int(value)
    return int(git(repo, "log", "-1", "--format=%ct"))


def commit_id(repo):
    """HEAD, with +dirty when shim/ differs from it (the build takes shim/ as it is)."""
    head = git(repo, "rev-parse", "HEAD")
    dirty = git(repo, "status", "--porcelain", "--", "shim")
    return head + ("+dirty" if dirty else "")


def package_version(repo):
    tree = ast.parse((Path(repo) / "shim/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    return "0+unknown"


def buildinfo(repo, arch, freezer, epoch, deps):
    """The JSON baked into the binary as shim/_buildinfo.json (read by shim/version.py)."""
    date = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    info = {
        "version": package_version(repo),
        "commit": commit_id(repo),
        "build_date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source_date_epoch": epoch,
        "arch": arch,
        "os": "linux",
        "freezer": freezer,
        "python": deps.pop("python", "3.11"),
        "deps": dict(sorted(deps.items())),
    }
    return (json.dumps(info, indent=2, sort_keys=False) + "\n").encode()


def stage_source(repo, dest, info_json):
    """Copy shim/ (as it is now, committed or not) into dest and add _buildinfo.json."""
    src = Path(repo) / "shim"
    target = Path(dest) / "shim"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*~"))
    (target / "_buildinfo.json").write_bytes(info_json)
    return target


def shim_modules(stage):
    """Every module of the staged shim package (all are roots: cli imports lazily)."""
    names = []
    for path in sorted(Path(stage, "shim").rglob("*.py")):
        rel = path.relative_to(stage).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def module_graph(stage, stdlib, excludes=EXCLUDES):
    """{module name: (source path, is_package)} for shim and the stdlib it reaches.

    Only pure-Python modules are listed; builtins live in libpython, and
    extension modules (lib-dynload) are absent on purpose: the runtime has
    fallbacks for them.
    """
    finder = modulefinder.ModuleFinder(path=[str(stage), str(stdlib)], excludes=list(excludes))
    for name in list(STARTUP) + shim_modules(stage):
        finder.import_hook(name)
    modules = {}
    for name, mod in finder.modules.items():
        if mod.__file__ and mod.__file__.endswith(".py"):
            modules[name] = (Path(mod.__file__), bool(mod.__path__))
    return dict(sorted(modules.items()))


def _pyc(source_path, arcname):
    code = compile(Path(source_path).read_bytes(), arcname, "exec", dont_inherit=True, optimize=0)
    # Unchecked hash-based pyc: no mtime inside, never compared to a source.
    return bytes(bootstrap_external._code_to_hash_pyc(code, b"\0" * 8, checked=False))


def archive(modules, package_data, epoch, compress=True):
    """Zip bytes: one .pyc per module plus package data, sorted, fixed metadata."""
    stamp = datetime.datetime.fromtimestamp(max(epoch, 315532800), datetime.timezone.utc).timetuple()[:6]
    entries = []
    for name, (path, is_package) in modules.items():
        base = name.replace(".", "/") + ("/__init__" if is_package else "")
        entries.append((base + ".pyc", _pyc(path, base + ".py")))
    entries.extend(package_data)
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method, compresslevel=9 if compress else None) as zf:
        for arcname, data in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=stamp)
            info.compress_type = method
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def package_data(stage):
    """Non-Python files of the shim package (schema, build info), as (arcname, bytes)."""
    root = Path(stage)
    out = []
    for path in sorted((root / "shim").rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc"):
            out.append((str(path.relative_to(root)), path.read_bytes()))
    return out
