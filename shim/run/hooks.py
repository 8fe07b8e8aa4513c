"""Pre- and post-hooks: the executables of a directory, run in name order.

Each hook gets the delegate's resolved environment (post-hooks also get
SHIM_EXIT_CODE and SHIM_REASON), a timeout, and stdout redirected to stderr so
the delegate's stdout stays its own.  A failing hook aborts the run (exit 122)
or, with `--hook-failure warn`, is reported and ignored.
"""

import os
import stat

from shim.errors import REASON_HOOK_FAILED, REASON_INTERRUPTED, REASON_SETUP, ShimError


def list_hooks(directory, say=None):
    """Executable regular files of `directory`, sorted by name; dotfiles are skipped,
    and a regular file that is not executable is skipped with a warning."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as err:
        raise ShimError("read hooks", directory, (err.strerror or str(err)).lower(),
                        "create the directory or drop --pre-hooks/--post-hooks",
                        reason=REASON_SETUP) from None
    hooks = []
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith("."):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(path, os.X_OK):
            hooks.append(path)
        elif say is not None:
            say("warn", f"run hook {path}: not executable, skipped; chmod +x it to run it, "
                        "or rename it to start with '.'")
    return hooks


def run_hooks(directory, env, phase, run_child, failure, say):
    """Run every hook in name order; returns [(path, Exit)].  `run_child(path, argv, env)`
    spawns, supervises and drains one hook (the pipeline's Run.run_child)."""
    results = []
    for path in list_hooks(directory, say):
        try:
            result = run_child(path, [path], env)
        except ShimError as err:
            if err.reason == REASON_INTERRUPTED:
                raise  # a stop signal ended the run, not the hook
            if failure == "warn":
                say("warn", err.message())
                continue
            raise ShimError("run", f"{phase} hook {path}", err.cause,
                            "fix the hook, or use --hook-failure warn",
                            reason=REASON_HOOK_FAILED) from None
        results.append((path, result))
        if result.code != 0:
            cause = f"exited with {result.code} ({result.reason})"
            if failure == "warn":
                say("warn", f"run {phase} hook {path}: {cause}; continuing (--hook-failure warn)")
                continue
            raise ShimError("run", f"{phase} hook {path}", cause,
                            "fix the hook, or use --hook-failure warn", reason=REASON_HOOK_FAILED)
    return results
