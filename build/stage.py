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
# Imported by CPython itself during start-up, or by name through the codec
# registry (getaddrinfo() on a str host name encodes it with idna): modulefinder
# cannot see them.
STARTUP = ("encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii",
           "encodings.latin_1", "encodings.utf_8_sig", "encodings.idna", "encodings.punycode",
           "encodings.raw_unicode_escape", "encodings.unicode_escape")
# Importable in the binary although no shim module imports them yet (the
# secrets/streams work may; `shim __selftest imports` checks they load).
EXTRA_ROOTS = ("asyncio",)
# Modules reachable from shim that are absent from the binary on purpose, with
# the reason.  Anything else reachable must be built in or in the archive: the
# build fails otherwise (declared_modules).
ABSENT = {
    "_bz2": "bz2, reached through shutil/tarfile/zipfile's optional compressors: shim never compresses",
    "_lzma": "lzma, as _bz2",
    "_ctypes": "ctypes, shim.proc.native's fallback when _shim_native is not built in (source runs)",
    "_decimal": "decimal falls back to _pydecimal (in the archive)",
    "_typing": "typing has a pure-Python fallback",
    "orjson": "shim.util.jsonio falls back to _json (built in); docs/freeze.md has the measured cost",
    "pyexpat": "xml.parsers.expat, reached only through plistlib (platform.mac_ver)",
    "os.path": "an alias of posixpath, set by os",
    "asyncio.DefaultEventLoopPolicy": "an attribute of asyncio (`from . import` of a name), not a module",
    "multiprocessing": "excluded (EXCLUDES); reached only through concurrent.futures.process "
                       "(ProcessPoolExecutor), which nothing in shim uses",
    "_overlapped": "Windows", "_scproxy": "macOS",
    "_frozen_importlib": "frozen into libpython (importlib._bootstrap)",
    "_frozen_importlib_external": "frozen into libpython (importlib._bootstrap_external)",
    # Other platforms' modules, imported under a platform check.
    "nt": "Windows", "_winapi": "Windows", "_winreg": "Windows", "winreg": "Windows",
    "msvcrt": "Windows", "java.lang": "Jython", "org.python.core": "Jython", "vms_lib": "VMS",
}


def git(repo, *args):
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, text=True,
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    return out.stdout.strip()


def _in_git(repo):
    return (Path(repo) / ".git").exists()


def source_date_epoch(repo):
    """SOURCE_DATE_EPOCH if set, else the commit time of HEAD; a copy of the tree without
    .git (a source tarball) uses the newest mtime of shim/ and build/ (kept by cp -a and tar)."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        return int(value)
    if _in_git(repo):
        return int(git(repo, "log", "-1", "--format=%ct"))
    files = [p for top in ("shim", "build") for p in Path(repo, top).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    return int(max(p.stat().st_mtime for p in files))


def commit_id(repo):
    """HEAD, with +dirty when shim/ differs from it (the build takes shim/ as it is);
    "unknown" outside a git checkout."""
    if not _in_git(repo):
        return "unknown"
    head = git(repo, "rev-parse", "HEAD")
    dirty = git(repo, "status", "--porcelain", "--", "shim")
    return head + ("+dirty" if dirty else "")


def package_version(repo):
    tree = ast.parse((Path(repo) / "shim/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    return "0+unknown"


def buildinfo(repo, arch, freezer, epoch, deps, extra=None):
    """The JSON baked into the binary as shim/_buildinfo.json (read by shim/util/buildinfo.py).

    extra: more top-level keys (the static build's `build`: locked/drifted and `drift`)."""
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
        **(extra or {}),
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


# Where the embedded CA bundle sits in the archive (read by shim/net/cabundle.py).
CA_BUNDLE = "shim/net/cacert.pem"


class _Finder(modulefinder.ModuleFinder):
    """modulefinder that also remembers who imported each module (for the error message)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.importers = {}

    def import_hook(self, name, caller=None, fromlist=None, level=-1):
        if caller is not None:
            self.importers.setdefault(name, set()).add(caller.__name__)
        return super().import_hook(name, caller, fromlist, level)


class MissingModules(RuntimeError):
    """Modules the runtime can import that the binary would not have."""


def module_graph(stage, stdlib, excludes=EXCLUDES):
    """(modules, reached): {module name: (source path, is_package)} of the
    pure-Python modules for the archive, and every other module name reached
    (builtins and modules that were not found), for declared_modules()."""
    finder = _Finder(path=[str(stage), str(stdlib)], excludes=list(excludes))
    for name in list(STARTUP) + list(EXTRA_ROOTS) + shim_modules(stage):
        finder.import_hook(name)
    modules, reached = {}, {}
    for name, mod in finder.modules.items():
        if mod.__file__ and mod.__file__.endswith(".py"):
            modules[name] = (Path(mod.__file__), bool(mod.__path__))
        else:
            # A builtin of the build machine's python3.11, or an extension module (lib-dynload).
            reached[name] = sorted(finder.importers.get(name, ())) or ["CPython itself"]
    missing, _maybe = finder.any_missing_maybe()  # maybe: `from x import y` where y is an attribute
    for name in missing:
        reached[name] = sorted(finder.badmodules.get(name, ()))
    return dict(sorted(modules.items())), reached


def declared_modules(stage, stdlib, builtins, absent=ABSENT):
    """The archive's modules, after checking that every module shim can reach is
    either in it, built in (`builtins`), or declared absent with a reason."""
    modules, reached = module_graph(stage, stdlib)
    problems = sorted(f"{name} (imported by {', '.join(by[:3]) or '?'})" for name, by in reached.items()
                      if name not in builtins and name not in modules
                      and name not in absent and name.split(".")[0] not in absent)
    if problems:
        raise MissingModules(f"check the module set: {'; '.join(problems)} would be missing from the binary; "
                             "build it in (build/static_recipe.py) or declare it in build/stage.py ABSENT "
                             "with the reason")
    return modules


def _code(source_path, arcname):
    return compile(Path(source_path).read_bytes(), arcname, "exec", dont_inherit=True, optimize=0)


def _pyc(source_path, arcname):
    # Unchecked hash-based pyc: no mtime inside, never compared to a source.
    return bytes(bootstrap_external._code_to_hash_pyc(_code(source_path, arcname), b"\0" * 8, checked=False))


# The paths whose imports are frozen into the launcher: the plain run (exec), the
# PID-1 path (supervise), and a run that drops to a user (issue 18: its modules from the
# archive through zipimport cost ~20 ms; frozen, well under 1 ms).
STARTUP_RUNS = (["--", "/bin/true"], ["--supervise", "--", "/bin/true"],
                ["--user", "0", "--rlimit", "nofile=1024", "--cap-keep", "CHOWN", "--", "/bin/true"],
                # local references (issue 17's cold-start budget): masked (the default) and not
                ["--secret", "X=ref+env://PATH", "--", "/bin/true"],
                ["--no-mask-secrets", "--secret", "X=ref+file:///dev/null", "--", "/bin/true"],
                # a Vault read over TLS: the client, ssl and socket (nothing listens on loopback
                # port 1: refused at once; the run fails after its imports, which is all we need)
                (["--no-mask-secrets", "--fetch-deadline", "1s", "--secret",
                  "X=ref+vault://secret/app?address=https%3A%2F%2F127.0.0.1%3A1#/p", "--", "/bin/true"],
                 {"VAULT_TOKEN": "build-probe"}))
# What CPython imports while it initialises (UTF-8 mode: stdio and file names are utf-8).
INIT_ENCODINGS = ("encodings", "encodings.aliases", "encodings.utf_8")


def startup_modules(stage, modules):
    """Names (of `modules`) that the start-up paths of STARTUP_RUNS import (exec, supervise,
    identity, local references, a Vault read over TLS).

    Found by running the staged tree once per path with the build's python3.11
    and -X importtime, in an empty environment (no SHIM_* settings), plus the
    encodings CPython itself imports before any of that.
    """
    names = {n for n in INIT_ENCODINGS if n in modules}
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'shim'; "
            "from shim.cli import main; sys.exit(main())")
    for run in STARTUP_RUNS:
        args, extra = run if isinstance(run, tuple) else (run, {})
        proc = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", code, str(stage), *args],
                              env={"PATH": "/usr/bin:/bin", **extra}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        # From source the supervise path may stop early (it needs _shim_native, which only the
        # binary has): what it imported until then still counts.
        if "| shim.cli" not in proc.stderr:
            raise RuntimeError(f"find the start-up modules: shim {' '.join(args)} from {stage} exited "
                               f"{proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
        for line in proc.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                name = line.rsplit("|", 1)[1].strip()
                if name in modules:
                    names.add(name)
    # A frozen module's package must be frozen too (its __path__ then points into the archive).
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules)
    # CPython 3.11 already deep-freezes os, io, codecs, abc, stat, posixpath… into libpython.
    import _imp

    return sorted(names - set(_imp._frozen_module_names()))


def frozen_c(modules, names):
    """C source of `shim_frozen`, the launcher's PyImport_FrozenModules table: the
    marshalled code of `names`, read-only data in the binary (no zip read, no
    inflate, no file I/O when they are imported)."""
    import marshal

    lines = ['#include "Python.h"', ""]
    table = []
    for i, name in enumerate(names):
        path, is_package = modules[name]
        base = name.replace(".", "/") + ("/__init__" if is_package else "")
        data = marshal.dumps(_code(path, base + ".py"))
        hexdata = ",".join(str(b) for b in data)
        lines.append(f"static const unsigned char m{i}[] = {{{hexdata}}};")
        table.append(f'    {{"{name}", m{i}, (int)sizeof m{i}, {int(is_package)}, NULL}},')
    lines += ["", "const struct _frozen shim_frozen[] = {", *table, "    {0, 0, 0, 0, NULL}", "};", ""]
    return "\n".join(lines)


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
