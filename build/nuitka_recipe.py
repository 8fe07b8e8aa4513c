"""`--freezer nuitka`: Nuitka compiles shim to C, linked fully static.

Nuitka standalone with --static-libpython=yes on Debian's python3.11, and
LDFLAGS=-static (Nuitka's scons appends LDFLAGS from the environment), so the
one file in the dist directory runs without libc.  Extension modules that are
not builtin in Debian's libpython (_json, _ctypes...) are left out: a static
binary cannot dlopen them and shim has fallbacks.  Nuitka compiles
`import ctypes` as a "hard import" that crashes (SIGSEGV, "Unexpected failure
of hard import of 'ctypes'") instead of raising ImportError when _ctypes cannot
load, so the stage gets a stand-in ctypes whose CDLL raises OSError (shim's
native.py then falls back, as it does without ctypes).  Host arch only.
"""

import os
import shutil
import subprocess
from pathlib import Path

import toolvenv

NOT_BUILTIN = ("_json", "_ctypes", "_ssl", "ssl", "_hashlib", "_decimal", "_bz2", "_lzma",
               "_sqlite3", "_uuid", "_asyncio", "_queue", "_multiprocessing", "readline",
               "_curses", "orjson", "uvloop", "setproctitle", "unicodedata")


def deps():
    return {"python": "3.11.2", "nuitka": _versions().get("Nuitka", "?")}


_CACHE = Path(os.environ.get("SHIM_CACHE", "/var/cache/shim"))


def _versions():
    return toolvenv.tool_versions(toolvenv.ensure(_CACHE, lambda m: None))


def build(stage_dir, work, log):
    python = toolvenv.ensure(_CACHE, log)
    out = Path(work) / "nuitka"
    if out.exists():
        shutil.rmtree(out)
    _standin_ctypes(stage_dir)
    entry = Path(stage_dir) / "shim_main.py"
    entry.write_text("from shim.cli import main\nraise SystemExit(main())\n")
    argv = [str(python), "-m", "nuitka", "--standalone", "--static-libpython=yes",
            "--python-flag=no_site,isolated,no_docstrings", "--include-package=shim", "--include-module=ctypes",
            "--include-data-files=%s=shim/_buildinfo.json" % (Path(stage_dir) / "shim/_buildinfo.json"),
            "--assume-yes-for-downloads", "--no-deployment-flag=self-execution", "--no-progressbar", "--quiet",
            f"--output-dir={out}", "--output-filename=shim-nuitka", "--remove-output",
            *[f"--nofollow-import-to={m}" for m in NOT_BUILTIN], str(entry)]
    # No PYTHONPATH: Nuitka itself imports ctypes; it finds shim and the stand-in
    # next to the main script, as Python would.
    env = {**os.environ, "LDFLAGS": "-static", "PYTHONHASHSEED": "0",
           "NUITKA_CACHE_DIR": str(_CACHE / "nuitka")}
    log("nuitka --standalone --static-libpython=yes (LDFLAGS=-static)")
    # cwd outside the stage: `python -m` puts cwd on sys.path, where the stand-in ctypes is.
    subprocess.run(argv, check=True, env=env, cwd=work, stdin=subprocess.DEVNULL)
    dist = out / "shim_main.dist"
    extra = sorted(p.name for p in dist.iterdir() if p.name != "shim-nuitka")
    if extra:
        log(f"note: nuitka dist has more than the binary (not shipped): {', '.join(extra)}")
    return (dist / "shim-nuitka").read_bytes()


CTYPES_STANDIN = '''"""Stand-in for ctypes in the static Nuitka build: no dlopen, so no foreign calls."""


class CDLL:
    def __init__(self, *args, **kwargs):
        raise OSError("ctypes is not available in a static binary")
'''


def _standin_ctypes(stage_dir):
    """A ctypes package that imports fine and fails on use (see the module docstring)."""
    pkg = Path(stage_dir) / "ctypes"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(CTYPES_STANDIN)
