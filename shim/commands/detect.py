"""`shim detect [--runtime NAME] [--root DIR] [FIRST_WORD]`: the runtime decision as JSON.

Prints {"runtime", "source", "evidence", "also"}: what shim would export as
SHIM_RUNTIME and pick `profiles.<runtime>` by. FIRST_WORD is the container's first
argument (`train`/`serve` under SageMaker); `--root` reads marker files below DIR.
"""

import os
import sys

from shim.errors import usage_error

USAGE = "usage: shim detect [--runtime NAME] [--root DIR] [FIRST_WORD]"


def main(argv, environ=None):
    from shim.platform import detect
    from shim.util import jsonio

    environ = os.environ if environ is None else environ
    args = _parse(argv)
    override = args.get("runtime") or environ.get("SHIM_RUNTIME") or None
    if override is not None:
        check_runtime(override, "--runtime" if args.get("runtime") else "SHIM_RUNTIME")
    decision = detect.decide(override, environ, detect.HostFiles(args.get("root", "/")),
                             args.get("first_word"))
    sys.stdout.buffer.write(jsonio.dumps(decision.as_dict(), indent=True) + b"\n")
    return 0


def check_runtime(name, where):
    from shim.platform.detect import RUNTIMES

    if name not in RUNTIMES:
        raise usage_error(f"option {where}", f"unknown runtime {name!r}",
                          "use one of " + ", ".join(RUNTIMES))
    return name


def _parse(argv):
    from shim.commands.argv import parse

    return parse(argv, "detect", USAGE, valued=("--runtime", "--root"), positional="first_word")
