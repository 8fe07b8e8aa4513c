"""Checks of the lifecycle options before anything runs: wait conditions, stop delay, breakpoints.

`plan(config, environ)` returns the parsed `--wait-for` conditions and raises the first
mistake as a usage error (exit 125); `problems(config, environ)` lists every mistake
(for `shim explain`).  Nothing here touches the network or writes a file.
"""

import os

from shim.errors import ShimError, usage_error

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

    from shim.config.options import Config
    from shim.run.waitfor import Condition


def plan(config: "Config", environ: "Mapping[str, str]") -> "list[Condition]":
    """The wait conditions; raises the first problem of any lifecycle option."""
    return _check(config, environ, [], first=True)


def problems(config: "Config", environ: "Mapping[str, str]") -> "list[ShimError]":
    """Every problem of the lifecycle options, as ShimErrors (empty: all good)."""
    found: list[ShimError] = []
    _check(config, environ, found, first=False)
    return found


def _check(config, environ, found, first):
    def fail(err: ShimError) -> None:
        if first:
            raise err
        found.append(err)

    conditions = []
    if config.steps.wait_for:
        from shim.run import waitfor

        for url in config.steps.wait_for:
            try:
                conditions.append(waitfor.parse(url, config.source_of("wait_for"), environ))
            except ShimError as err:
                fail(err)
    delay = config.supervise.stop_delay
    if delay is not None and delay <= 0:
        fail(usage_error(f"option {config.source_of('stop_delay')}", "must be longer than 0",
                         "give a duration such as 15s, or drop the option"))
    d = config.debug
    if d.breakpoint_on_failure or d.breakpoint_before:
        which = config.source_of("breakpoint_on_failure" if d.breakpoint_on_failure
                                 else "breakpoint_before")
        if not d.dir:
            fail(usage_error(f"option {which}", "needs a debug directory",
                             "add --debug-dir DIR (SHIM_DEBUG_DIR), a directory this user can write"))
        else:
            cause = unwritable(d.dir)
            if cause:
                fail(usage_error(f"option {config.source_of('debug_dir')}",
                                 f"debug directory {d.dir} {cause}",
                                 "mount a writable volume there (an emptyDir) or choose another"))
    return conditions


def unwritable(path: str) -> "str | None":
    """Why shim could not write in directory `path` (or create it), or None."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe.rstrip("/")) or "/"
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"is not a directory ({probe} is a file)"
    if _read_only(probe):
        return "is on a read-only file system"
    if not os.access(probe, os.W_OK | os.X_OK):
        return "is not writable" if probe == path else f"cannot be created ({probe} is not writable)"
    return None


def _read_only(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
