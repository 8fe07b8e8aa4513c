"""`shim version`: what this binary is, as JSON (`--short`: one line)."""

import platform
import sys

from shim.config.argv import parse_or_usage
from shim.config.option import BOOL, Option
from shim.util.buildinfo import build_info, identity
from shim.util.stdio import write_stdout

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

OPTIONAL_DEPS = ("orjson", "uvloop", "setproctitle")


def _dep_version(name, built):
    try:
        module = __import__(name)
    except ImportError:
        return None
    # A builtin module of the static binary (setproctitle) has no __version__:
    # the build recorded which sdist it came from.
    return getattr(module, "__version__", None) or built.get(name) or "unknown"


def report() -> "dict[str, Any]":
    info = build_info() or {}
    return {
        **identity(info),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "deps": {name: _dep_version(name, info.get("deps", {})) for name in OPTIONAL_DEPS},
        "ca_bundle": info.get("deps", {}).get("ca-certificates"),
        "build_deps": info.get("deps", {}),
        # "locked": built from exactly build/inputs.lock; "drifted": the mirror had moved on and
        # the build took today's versions of some inputs (listed in "drift").
        "build": info.get("build", "source"),
        "drift": info.get("drift", {}),
        "components": _components(info),
        "native": _has_native(),
    }


# Build-info keys that are not embedded components (the toolchain, the lock, a module name).
NOT_COMPONENTS = ("lock", "cc", "native")


def _components(info):
    """{component: version} of what the binary has inside (empty from source); the full list,
    with licences and hashes, is `shim version --sbom`."""
    deps = info.get("deps", {})
    out = {name: value for name, value in deps.items() if name not in NOT_COMPONENTS and isinstance(value, str)}
    if out and info.get("python"):
        out["python"] = info["python"]
    return dict(sorted(out.items()))


def _has_native() -> bool:
    try:
        import _shim_native  # noqa: F401

        return True
    except ImportError:
        return False


def sbom() -> "dict[str, Any] | None":
    """The CycloneDX document of this shim: the embedded one plus the binary's own sha256,
    or (from source) shim, the Python running it and the optional modules found."""
    from shim.util import sbom as cdx

    doc = cdx.embedded()
    if doc is not None:
        try:
            return cdx.with_binary(doc, cdx.file_sha256("/proc/self/exe"))
        except OSError:
            return doc  # no /proc: the document still names every component
    info = report()
    return cdx.for_source(info["version"], info["python"], info["python_implementation"], info["deps"])


USAGE = "usage: shim version [--short | --sbom]"
OPTIONS = (Option("short", ["--short"], None, BOOL, False, "one line: shim VERSION"),
           Option("sbom", ["--sbom"], None, BOOL, False,
                  "print the CycloneDX 1.5 SBOM of this binary (its embedded components, licences, hashes)"))


def main(argv: "list[str]") -> int:
    parsed = parse_or_usage(argv, OPTIONS, "version", USAGE)
    if parsed is None:
        return 0
    flags, _ = parsed
    if flags.get("short"):
        write_stdout(f"shim {report()['version']}\n")
        return 0
    from shim.util import jsonio

    if flags.get("sbom"):
        write_stdout(jsonio.dumps(sbom(), indent=True) + b"\n")
        return 0

    write_stdout(jsonio.dumps(report(), indent=True) + b"\n")
    return 0
