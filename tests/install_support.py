"""Helpers of the install tests (unit and process tiers)."""

import os
import random
import subprocess
import sys
from pathlib import Path

from shim.commands import install

REPO = Path(__file__).resolve().parent.parent
SHIM = [sys.executable, "-m", "shim", "install"]


def run_install(*args, env=None, **kw):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIM_", "STATICX_"))}
    full_env.update(env or {})
    return subprocess.run(SHIM + list(args), cwd=REPO, env=full_env, capture_output=True, text=True, **kw)


def elf(path, machine, size=4096, seed=0):
    """A file with an ELF header for `machine` and seeded content."""
    rnd = random.Random(seed)
    head = b"\x7fELF\x02\x01\x01" + bytes(9) + (2).to_bytes(2, "little") + machine.to_bytes(2, "little")
    path.write_bytes(head + rnd.randbytes(size - len(head)))
    path.chmod(0o755)
    return path


def no_temps(directory):
    return [p.name for p in Path(directory).iterdir() if p.name.startswith(install.TMP_PREFIX)]
