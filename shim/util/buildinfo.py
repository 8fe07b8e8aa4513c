"""What this shim is: the build info the freezer baked in, or the source checkout's.

Below commands/ and telemetry/: `shim version` and the run report both read it.
"""

import os
import platform

from shim import __version__
from shim.util.platforms import arch_of

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any


def build_info() -> "dict[str, Any] | None":
    """The JSON the freezer baked in (shim/_buildinfo.json), or None from source."""
    from shim.util.resources import get_data

    data = get_data("shim", "_buildinfo.json")
    if not data:
        return None
    from shim.util import jsonio

    try:
        return jsonio.loads(data)
    except ValueError:
        return None


def source_commit() -> "str | None":
    """HEAD of the git checkout the source runs from (no git binary needed)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    git = os.path.join(repo, ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            path = os.path.join(git, ref)
            if os.path.exists(path):
                with open(path) as f:
                    return f.read().strip()
            with open(os.path.join(git, "packed-refs")) as f:
                for line in f:
                    if line.rstrip().endswith(" " + ref):
                        return line.split()[0]
            return None
        return head
    except OSError:
        return None


def identity(info: "dict[str, Any] | None" = None) -> "dict[str, Any]":
    """version, commit, build_date, arch, freezer: who made this run (reports, `shim version`)."""
    info = build_info() or {} if info is None else info
    return {
        "version": info.get("version", __version__),
        "commit": info.get("commit") or source_commit(),
        "build_date": info.get("build_date"),
        "arch": info.get("arch", arch_of(platform.machine())),
        "freezer": info.get("freezer", "source"),
    }
