"""The build-only Python tools (Nuitka, PyInstaller, staticx) in a cached venv.

Installed with hashes from build/requirements.txt into
${SHIM_CACHE}/build-venv-KEY (KEY: digest of that file), from Debian's
/usr/bin/python3.11, the interpreter both freezers must embed.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"


def ensure(cache, log):
    """Path of the venv's python, creating the venv once per requirements digest."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = Path(cache) / f"build-venv-{key}"
    python = venv / "bin/python"
    if (venv / ".complete").exists():
        return python
    log(f"installing build tools into {venv}")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--require-hashes", "--no-deps",
                    "-r", str(REQUIREMENTS)], check=True, stdin=subprocess.DEVNULL)
    (venv / ".complete").write_text(key + "\n")
    return python


def tool_versions(python):
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], text=True,
                         stdout=subprocess.PIPE, check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return dict(line.split("==", 1) for line in out.stdout.split() if "==" in line)
