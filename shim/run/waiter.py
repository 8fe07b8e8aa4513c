"""Wait for files before the delegate starts (Tekton's `-wait_file`, in milliseconds).

Each wait file is satisfied when PATH exists; when PATH.err exists instead, an
upstream step failed and this step is skipped (exit 121, reason skipped).
inotify on each file's directory wakes the waiter the moment a file appears;
without inotify it polls.  Signals that would stop the run are checked while
waiting, so a pod deleted during a wait ends promptly.
"""

import os
import select
import time

from shim.errors import REASON_INTERRUPTED, REASON_SETUP, REASON_WAIT_TIMEOUT, ShimError

SIGNAL_CHECK = 0.05  # with inotify: how often pending signals are looked at


class Skip(Exception):
    """An upstream failure marker (PATH.err) was found."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path


def state(path):
    """'ready', 'failed' (PATH.err exists) or None; errors other than absence raise."""
    for candidate, result in ((path, "ready"), (path + ".err", "failed")):
        try:
            os.stat(candidate)
            return result
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue
        except OSError as err:
            raise ShimError("wait for", path, (err.strerror or str(err)).lower(),
                            "make the file's directory readable by this user",
                            reason=REASON_SETUP) from None
    return None


class Waiter:
    """Waits for every path, in order.  `clock`, `inotify` and `signals` are replaceable."""

    def __init__(self, signals, timeout=None, poll_interval=0.1, clock=time.monotonic,
                 make_inotify=None):
        self.signals = signals
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.clock = clock
        if make_inotify is None:
            from shim.proc.native import inotify as make_inotify
        self.make_inotify = make_inotify

    def wait_all(self, paths):
        """Return when every path exists.  Raises Skip or ShimError (timeout, signal)."""
        if not paths:
            return
        deadline = self.clock() + self.timeout if self.timeout is not None else None
        notifier = self.make_inotify()
        try:
            for path in paths:
                self._wait_one(path, deadline, notifier)
        finally:
            if notifier is not None:
                notifier.close()

    def _wait_one(self, path, deadline, notifier):
        watching = notifier is not None and notifier.watch(os.path.dirname(path) or ".")
        interval = SIGNAL_CHECK if watching else min(self.poll_interval, 0.01)
        while True:
            found = state(path)
            if found == "ready":
                return
            if found == "failed":
                raise Skip(path)
            self._check_signals()
            now = self.clock()
            if deadline is not None and now >= deadline:
                raise ShimError("wait for", path, f"not there after {self.timeout:g}s",
                                "check the step that writes it, or raise --wait-timeout",
                                reason=REASON_WAIT_TIMEOUT)
            wake = interval if deadline is None else min(interval, deadline - now)
            if watching:
                ready, _, _ = select.select([notifier], [], [], max(wake, 0.0))
                if ready:
                    notifier.drain()
            else:
                time.sleep(max(wake, 0.0))

    def _check_signals(self):
        while self.signals.wait(0) is not None:
            pass
        if self.signals.stop_signal is not None:
            raise ShimError("wait", "for files", f"interrupted by signal {self.signals.stop_signal}",
                            "", reason=REASON_INTERRUPTED, code=128 + self.signals.stop_signal)

