"""The CLI edge: pick the subcommand, run it, turn errors into exit codes.

This is the only module that prints a `ShimError` or decides an exit code for
one; nothing below it calls `sys.exit`.  Subcommands come before any `--`:

    shim [OPTIONS] -- COMMAND [ARGS...]     run COMMAND (the default)
    shim version                            JSON build and dependency report
    shim check [--config PATH]              validate a configuration
    shim install DIR [--versioned] ...      copy this binary into DIR
    shim detect [--runtime NAME]            the runtime decision and its evidence, as JSON
    shim k8s … / shim dockerfile …          platform tooling (shimtools: pip package, tools image)
    shim exec-env [OPTIONS] -- COMMAND      run COMMAND with the delegate's resolved env
    shim explain [OPTIONS] -- COMMAND       what a run would do, and where each setting came from
    shim doctor [--format json]             what in this machine or image would break a run
"""

import os
import sys

from shim.errors import EXIT_INTERNAL, EXIT_USAGE, ShimError
from shim.util.stdio import Stdout, reserve_closed_fds, write_stderr

# name -> module providing `main(argv) -> int`; imported only when used, so the
# run path never loads another subcommand's code.
SUBCOMMANDS = {
    "version": "shim.commands.version",
    "check": "shim.commands.check",
    "install": "shim.commands.install",
    "detect": "shim.commands.detect",
    "exec-env": "shim.commands.exec_env",
    "explain": "shim.commands.explain",
    "doctor": "shim.commands.doctor",
    "__selftest": "shim.commands.selftest",  # hidden: checks of a built binary (docs/freeze.md)
}
# Platform tooling lives in the separate `shimtools` package (pip install, tools image),
# reached by name through importlib so the runtime never imports it as code; the frozen
# binary does not carry it, so there these words only say where it is.
TOOLING = {"k8s": "shimtools.cli", "dockerfile": "shimtools.cli"}
NO_TOOLS = ("{word}: not part of the runtime binary; the tooling ships in the Python package "
            "(pip install 'shim[tools]') and in the tools image's -tooling variant")
# Set only by the test suite: makes the run path fail with an internal error, so the
# exit-119 contract (one line, SHIM_DEBUG=1 for a traceback) has a test.  It is read
# from the environment shim was started with and does nothing unless it is exactly this.
CRASH_FOR_TESTS = ("SHIM_TEST_INTERNAL_ERROR", "raise")


def _subcommand(argv):
    """Return (module name, rest) for a subcommand, or (None, argv) to run a delegate."""
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]], argv[1:]
    if argv and argv[0] in TOOLING:
        return TOOLING[argv[0]], argv
    if argv and argv[0] == "--version":
        return SUBCOMMANDS["version"], ["--short"]
    return None, argv


def inherited_environ(proc: str = "/proc/self/environ") -> "dict[str, str]":
    """The environment this process was started with, byte for byte.

    Not `os.environ`: CPython's locale coercion adds LC_CTYPE=C.UTF-8 to it (and
    the static launcher may add its own), and the delegate must get what shim
    inherited.  Falls back to os.environ where /proc is not mounted.  Where a name
    repeats, the first wins, as getenv(3) does.
    """
    try:
        with open(proc, "rb") as f:
            data = f.read()
    except OSError:
        return dict(os.environ)
    env: dict[str, str] = {}
    for entry in data.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq and name:
            env.setdefault(os.fsdecode(name), os.fsdecode(value))
    return env


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    module_name, rest = _subcommand(argv)
    # Output goes through fds 1 and 2 (closed or full stdout: a one-line error, not 119).
    saved, sys.stdout = sys.stdout, Stdout()
    try:
        return _dispatch(module_name, rest)
    finally:
        sys.stdout = saved


def _dispatch(module_name, rest):
    try:
        if module_name is None:
            from shim.run.pipeline import main as run_main

            environ = inherited_environ()
            if environ.get(CRASH_FOR_TESTS[0]) == CRASH_FOR_TESTS[1]:
                raise RuntimeError("internal error requested by " + CRASH_FOR_TESTS[0])
            return run_main(rest, environ)
        # A subcommand opens files of its own: none of them may land on a closed fd 0-2.
        # (The run path leaves fds alone: the delegate inherits them as they are.)
        reserve_closed_fds()
        _unblock_signals()  # subcommands are ordinary programs: Ctrl-C and TERM end them
        if module_name in TOOLING.values():
            return _tools(module_name, rest)
        module = __import__(module_name, fromlist=["main"])
        return module.main(rest)
    except ShimError as err:
        _say(err.message())
        if getattr(err, "show_usage", False):
            from shim.config.options import USAGE

            write_stderr(USAGE + "\n")
        return err.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # stdout's reader went away: quiet, as SIGPIPE would end us
        return 141
    except Exception as err:  # the last line of defence: one line, never a traceback
        if os.environ.get("SHIM_DEBUG") == "1":  # the traceback, and still the documented code
            import traceback

            write_stderr(traceback.format_exc())
            return EXIT_INTERNAL
        detail = " ".join(str(err).split())
        _say(f"run shim: internal error {type(err).__name__}: {detail}; "
             "set SHIM_DEBUG=1 for a traceback and report it")
        return EXIT_INTERNAL


def _tools(module_name, argv):
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != module_name.split(".")[0]:
            raise  # the tooling is there but broken: an internal error, not "not installed"
        _say(NO_TOOLS.format(word=argv[0]))
        return EXIT_USAGE
    return module.main(argv)


def _unblock_signals() -> None:
    """Undo the static launcher's start-up signal block (a no-op from source)."""
    from shim.proc.native import initial_sigmask

    mask = initial_sigmask()
    if mask is not None:
        import _signal

        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)


def _say(line) -> None:
    write_stderr(f"shim: {line}\n")
