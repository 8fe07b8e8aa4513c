"""`shim detect [--runtime NAME] [--root DIR] [FIRST_WORD]`: the runtime decision as JSON.

Prints {"runtime", "source", "evidence", "also"}: what shim would export as
SHIM_RUNTIME and pick `profiles.<runtime>` by. FIRST_WORD is the container's first
argument (`train`/`serve` under SageMaker); `--root` reads marker files below DIR.
"""

import os

from shim.config.argv import parse_or_usage
from shim.config.option import PATH, STR, Option
from shim.errors import usage_error
from shim.util.stdio import write_stdout
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

USAGE = "usage: shim detect [--runtime NAME] [--root DIR] [FIRST_WORD]"

# The option table of `shim detect` (same Option class and converters as the run options).
OPTIONS = (
    Option("runtime", ["--runtime"], None, STR, None, "decide as if this runtime were detected",
           metavar="NAME"),
    Option("root", ["--root"], None, PATH, "/", "read marker files below DIR", metavar="DIR"),
)


def main(argv: "list[str]", environ: "Mapping[str, str] | None" = None) -> int:
    from shim.platform import detect
    from shim.util import jsonio

    environ = os.environ if environ is None else environ
    parsed = parse_or_usage(argv, OPTIONS, "detect", USAGE, positionals=1)
    if parsed is None:
        return 0
    args, words = parsed
    args["first_word"] = words[0] if words else None
    override = args.get("runtime") or environ.get("SHIM_RUNTIME") or None
    if override is not None:
        check_runtime(override, "--runtime" if args.get("runtime") else "SHIM_RUNTIME")
    decision = detect.decide(override, environ, detect.HostFiles(args.get("root", "/")),
                             args.get("first_word"))
    shown = decision.as_dict()
    from shim.run import identity  # the delegate's user, groups, capabilities, limits

    effective = identity.effective_for(environ, decision.runtime)
    if effective is not None:
        shown["identity"] = effective
    write_stdout(jsonio.dumps(shown, indent=True) + b"\n")
    return 0


def check_runtime(name: str, where: str) -> str:
    from shim.platform.detect import RUNTIMES

    if name not in RUNTIMES:
        raise usage_error(f"option {where}", f"unknown runtime {show(name)}",
                          "use one of " + ", ".join(RUNTIMES))
    return name

