"""Wait for files before the delegate starts (Tekton's `-wait_file`).

Each wait file is satisfied when PATH exists; when PATH.err exists instead, an
upstream step failed and this step is skipped (exit 121, reason skipped).  inotify
on the nearest existing directory wakes the waiter the moment a file (or a missing
parent directory) appears; without inotify it polls every `poll_interval`.  The
wait runs on the resident loop, so a stop signal ends it at once.
"""

import os

from shim.errors import REASON_INTERRUPTED, REASON_SETUP, REASON_WAIT_TIMEOUT, ShimError

MIN_POLL = 0.001  # --poll-interval 0 means "as often as sensible", never a busy loop


class Skip(Exception):
    """An upstream failure marker (PATH.err) was found."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path


def state(path: str) -> "str | None":
    """'ready', 'failed' (PATH.err exists) or None; errors other than absence raise."""
    for candidate, result in ((path, "ready"), (path + ".err", "failed")):
        try:
            os.stat(candidate)
            return result
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            raise ShimError("wait for", path, (err.strerror or str(err)).lower(),
                            "make the file's directory readable by this user",
                            reason=REASON_SETUP) from None
    return None


def nearest_directory(path: str) -> str:
    """The deepest existing directory on the way to `path`'s parent."""
    d = os.path.dirname(os.path.abspath(path))
    while d != "/" and not os.path.isdir(d):
        d = os.path.dirname(d)
    return d


class Waiter:
    """Waits for every path, in order, on `resident`'s loop.  `make_inotify` is replaceable."""

    def __init__(self, resident, timeout=None, poll_interval=0.1, make_inotify=None, log=None):
        self.resident = resident
        self.log = log or (lambda level, message: None)
        self.loop = resident.loop
        self.timeout = timeout or None  # zero means no timeout, as for --timeout
        self.poll_interval = max(poll_interval or 0.0, MIN_POLL)
        if make_inotify is None:
            from shim.proc.native import inotify as make_inotify
        self.make_inotify = make_inotify
        self._changed = False

    def wait_all(self, paths: "list[str]", deadline: "float | None" = None) -> None:
        """Return when every path exists.  Raises Skip or ShimError (timeout, signal).

        `deadline` (loop time): when --wait-timeout also bounds the waits after this one.
        """
        if not paths:
            return
        if deadline is None and self.timeout is not None:
            deadline = self.loop.time() + self.timeout
        notifier = self.make_inotify()
        if notifier is not None:
            self.loop.add_reader(notifier.fileno(), lambda: self._on_event(notifier))
        try:
            for path in paths:
                self._wait_one(path, deadline, notifier)
        finally:
            if notifier is not None:
                self.loop.remove_reader(notifier.fileno())
                notifier.close()

    def _on_event(self, notifier) -> None:
        notifier.drain()
        self._changed = True

    def _wait_one(self, path, deadline, notifier):
        said = False
        while True:
            watching = notifier is not None and notifier.watch(nearest_directory(path))
            found = state(path)
            if found == "ready":
                return
            if found == "failed":
                raise Skip(path)
            self._check_stop()
            if not said:  # progress, as --wait-for says it: which file is still pending
                self.log("info", f"wait for file {path}" + ("" if watching else
                                                             f" (polling every {self.poll_interval:g}s)"))
                said = True
            now = self.loop.time()
            if deadline is not None and now >= deadline:
                raise ShimError("wait for", path, f"not there after {self.timeout:g}s",
                                "check the step that writes it, or raise --wait-timeout",
                                reason=REASON_WAIT_TIMEOUT)
            wake = None if watching else now + self.poll_interval
            if deadline is not None:
                wake = deadline if wake is None else min(wake, deadline)
            self._changed = False
            self.resident.wait_until(lambda: self._changed, wake)

    def _check_stop(self):
        sig = self.resident.signals.stop_signal
        if sig is not None:
            raise ShimError("wait", "for files", f"interrupted by signal {sig}",
                            "", reason=REASON_INTERRUPTED, code=128 + sig)
