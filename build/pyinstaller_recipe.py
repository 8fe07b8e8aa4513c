"""`--freezer pyinstaller`: PyInstaller onefile wrapped by staticx (the naive baseline).

Kept buildable for the comparison in docs/freeze.md: it extracts itself into
TMPDIR on every start, runs as three processes and cannot start without a
writable /tmp.  Work files stay under .work/ (never ./build, PyInstaller's
default).  Host arch only (staticx publishes x86_64 wheels only).
"""

import os
import shutil
import subprocess
from pathlib import Path

import stage
import toolvenv

_CACHE = Path(os.environ.get("SHIM_CACHE", "/var/cache/shim"))


def deps():
    versions = toolvenv.tool_versions(toolvenv.ensure(_CACHE, lambda m: None))
    return {"python": "3.11.2", "pyinstaller": versions.get("pyinstaller", "?"),
            "staticx": versions.get("staticx", "?")}


def build(stage_dir, work, log):
    python = toolvenv.ensure(_CACHE, log)
    bindir = python.parent
    root = Path(work) / "pyinstaller"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    entry = Path(stage_dir) / "shim_main.py"
    entry.write_text("from shim.cli import main\nraise SystemExit(main())\n")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    log("pyinstaller --onefile")
    subprocess.run([str(bindir / "pyinstaller"), "--onefile", "--noconfirm", "--log-level=WARN",
                    "--name", "shim-onefile", "--paths", str(stage_dir),
                    # cli imports subcommands lazily by name: list every module.
                    *[f"--hidden-import={m}" for m in stage.shim_modules(stage_dir)],
                    "--add-data", f"{Path(stage_dir) / 'shim/_buildinfo.json'}:shim",
                    "--workpath", str(root / "work"), "--specpath", str(root),
                    "--distpath", str(root / "dist"), str(entry)],
                   check=True, env=env, cwd=root, stdin=subprocess.DEVNULL)
    log("staticx")
    out = root / "dist/shim-staticx"
    subprocess.run([str(bindir / "staticx"), str(root / "dist/shim-onefile"), str(out)],
                   check=True, env=env, cwd=root, stdin=subprocess.DEVNULL)
    return out.read_bytes()
