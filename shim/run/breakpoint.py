"""Pipeline step: Tekton-style breakpoints (`--breakpoint-before`, `--breakpoint-on-failure`).

A pause keeps shim (and with it the container, PID 1 still reaping) alive so a person can
`kubectl exec` in, run `shim exec-env -- sh` for the delegate's environment, and look around:

    before the delegate:  DEBUG_DIR/paused says so; DEBUG_DIR/resume starts the delegate
    after a failure:      DEBUG_DIR/failed holds the exit record (JSON); DEBUG_DIR/resume ends
                          shim with the delegate's own exit code (Tekton's breakpointexit)

`resume` is consumed when it ends a pause (a second pause waits for a new one); one that
exists already when the pause begins ends it at once.  A stop signal ends the pause at once
too: before the delegate the run is interrupted (128+n); after a failure shim exits with the
delegate's code.  The wait is the wait-file waiter's (inotify, on the resident loop).
"""

import os
import time

from shim.errors import REASON_EXITED, REASON_INTERRUPTED, ShimError
from shim.util import jsonio
from shim.util.fsutil import atomic_write

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable

    from shim.config.options import Config
    from shim.proc.reaper import Exit
    from shim.proc.supervise import Resident
    from shim.run.pipeline import Outcome

FAILED, RESUME, PAUSED = "failed", "resume", "paused"


def failed(result: "Exit") -> bool:
    """Does this delegate Exit count as a failure (a non-zero code, a signal, a timeout...)?"""
    return result.reason != REASON_EXITED or result.code != 0


def before(resident: "Resident", config: "Config", log: "Callable[[str, str], object]") -> None:
    """Pause before the delegate starts, until DEBUG_DIR/resume or a stop signal (the caller
    then ends the run as interrupted)."""
    d: str = config.debug.dir  # type: ignore[assignment]  # lifecycle.problems requires it
    _prepare(d)
    _write(d, PAUSED, {"breakpoint": "before", "pid": os.getpid(), "since": time.time(),
                       "resume": os.path.join(d, RESUME)})
    log("warn", f"breakpoint: paused before the delegate starts; inspect it with "
                f"'shim exec-env -- sh'; create {os.path.join(d, RESUME)} to start it")
    _wait(resident, config)  # a stop signal: the caller sees it and ends the run
    _remove(d, PAUSED)


def on_failure(resident: "Resident", config: "Config", log: "Callable[[str, str], object]", outcome: "Outcome",
               record: "dict[str, Any]") -> None:
    """The delegate failed: write DEBUG_DIR/failed and pause until resume (or a stop signal)."""
    d: str = config.debug.dir  # type: ignore[assignment]  # lifecycle.problems requires it
    _prepare(d)
    _write(d, FAILED, record)
    _write(d, PAUSED, {"breakpoint": "on-failure", "pid": os.getpid(), "since": time.time(),
                       "resume": os.path.join(d, RESUME)})
    log("warn", f"breakpoint: the delegate failed ({outcome.reason}, exit code "
                f"{outcome.exit_code}); the record is in {os.path.join(d, FAILED)}; inspect with "
                f"'shim exec-env -- sh'; create {os.path.join(d, RESUME)} to end with code "
                f"{outcome.exit_code}")
    if not _wait(resident, config):
        log("info", "breakpoint: ended by a stop signal")  # the delegate's code still stands
    _remove(d, PAUSED)


def _wait(resident, config) -> bool:
    """True when resume appeared (it is consumed), False when a stop signal ended the pause."""
    from shim.run.waiter import Skip, Waiter

    resume = os.path.join(config.debug.dir, RESUME)
    try:
        Waiter(resident, None, config.steps.poll_interval).wait_all([resume])
    except Skip:
        pass  # resume.err: a resume all the same
    except ShimError as err:
        if err.reason != REASON_INTERRUPTED:
            raise
        return False
    _remove(config.debug.dir, RESUME)
    _remove(config.debug.dir, RESUME + ".err")
    return True


def _prepare(d):
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as err:
        from shim.errors import REASON_SETUP

        raise ShimError("create", f"debug directory {d}", (err.strerror or str(err)).lower(),
                        "mount a writable volume there (an emptyDir) or choose another --debug-dir",
                        reason=REASON_SETUP) from None


def _write(d, name, doc) -> None:
    atomic_write(os.path.join(d, name), jsonio.dumps(doc, indent=True) + b"\n",
                 what="breakpoint file")


def _remove(d, name) -> None:
    try:
        os.unlink(os.path.join(d, name))
    except OSError:
        pass  # not there, or someone removed it already
