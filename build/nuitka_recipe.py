"""`--freezer nuitka`: Nuitka compiles shim to C, linked fully static.

Nuitka standalone with --static-libpython=yes on Debian's python3.11, and
LDFLAGS=-static (Nuitka's scons appends LDFLAGS from the environment), so the
one file in the dist directory runs without libc.  Extension modules that are
not builtin in Debian's libpython (_json, _ctypes...) are left out: a static
binary cannot dlopen them and shim has fallbacks.  Host arch only.
"""

import os
import shutil
import subprocess
from pathlib import Path

import toolvenv

NOT_BUILTIN = ("_json", "_ctypes", "ctypes", "_ssl", "ssl", "_hashlib", "_decimal", "_bz2", "_lzma",
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
    entry = Path(stage_dir) / "shim_main.py"
    entry.write_text("from shim.cli import main\nraise SystemExit(main())\n")
    argv = [str(python), "-m", "nuitka", "--standalone", "--static-libpython=yes",
            "--python-flag=no_site,isolated,no_docstrings", "--include-package=shim",
            "--include-data-files=%s=shim/_buildinfo.json" % (Path(stage_dir) / "shim/_buildinfo.json"),
            "--assume-yes-for-downloads", "--no-progressbar", "--quiet",
            f"--output-dir={out}", "--output-filename=shim-nuitka", "--remove-output",
            *[f"--nofollow-import-to={m}" for m in NOT_BUILTIN], str(entry)]
    env = {**os.environ, "LDFLAGS": "-static", "PYTHONPATH": str(stage_dir), "PYTHONHASHSEED": "0",
           "NUITKA_CACHE_DIR": str(_CACHE / "nuitka")}
    log("nuitka --standalone --static-libpython=yes (LDFLAGS=-static)")
    subprocess.run(argv, check=True, env=env, cwd=stage_dir, stdin=subprocess.DEVNULL)
    dist = out / "shim_main.dist"
    extra = sorted(p.name for p in dist.iterdir() if p.name != "shim")
    if extra:
        log(f"note: nuitka dist has more than the binary (not shipped): {', '.join(extra)}")
    return (dist / "shim-nuitka").read_bytes()
