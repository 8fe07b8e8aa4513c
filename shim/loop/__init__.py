"""The one event loop of the supervising process.

Everything the resident shim waits for is a source on this loop: signals (a
signalfd, so the blocked-signal design stays: no Python signal handlers), child
exits (SIGCHLD through the signalfd, and a pidfd for the delegate), inotify,
pipes and sockets (readers/writers), timers, and work finished on other threads
(`call_soon_threadsafe`).  One `epoll` instance multiplexes them all.

Why our own loop and not asyncio: the plain supervise path (shim as PID 1 with no
streams or secrets) must start in a few milliseconds and `import asyncio` costs
more than the rest of shim's start-up together; asyncio's child watchers and
`add_signal_handler` would also fight the single `waitpid(-1)` reaper and the
blocked-signal design.  uvloop would need asyncio as well.  The measured figures
are in docs/freeze.md and `scripts/bench loop`.

The API is a deliberately small subset of asyncio's (add_reader, call_later,
call_soon_threadsafe...) so code written against it reads the same.
"""

import heapq
import os
import select
import time

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import threading
    from typing import Any, Callable

_READ = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
_WRITE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


class Timer:
    """A scheduled call; `cancel()` stops it from running."""

    __slots__ = ("when", "callback", "cancelled", "_seq")

    def __init__(self, when, callback, seq):
        self.when, self.callback, self.cancelled, self._seq = when, callback, False, seq

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other):
        return (self.when, self._seq) < (other.when, other._seq)


class Loop:
    """epoll-based loop.  `clock` is injectable (tests/unit/test_loop.py drives it with a fake clock)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._epoll = select.epoll()
        self._readers = {}  # fd -> callback()
        self._writers = {}
        self._timers = []  # heap of Timer
        self._seq = 0
        self._ready = []  # callbacks to run on the next iteration
        self._wake_r = self._wake_w = None
        self._stopped = False

    # -- descriptors ---------------------------------------------------------------
    def add_reader(self, fd: int, callback: "Callable[..., object]") -> None:
        self._readers[fd] = callback
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def add_writer(self, fd: int, callback: "Callable[..., object]") -> None:
        self._writers[fd] = callback
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    def _update(self, fd) -> None:
        mask = (_READ if fd in self._readers else 0) | (_WRITE if fd in self._writers else 0)
        try:
            if mask:
                try:
                    self._epoll.modify(fd, mask)
                except FileNotFoundError:
                    self._epoll.register(fd, mask)
            else:
                self._epoll.unregister(fd)
        except (FileNotFoundError, ValueError, OSError):
            pass  # closed already: nothing to watch

    # -- time -------------------------------------------------------------------------
    def time(self) -> float:
        return self.clock()

    def call_at(self, when: float, callback: "Callable[..., object]") -> Timer:
        self._seq += 1
        timer = Timer(when, callback, self._seq)
        heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, delay: float, callback: "Callable[..., object]") -> Timer:
        return self.call_at(self.clock() + max(0.0, delay), callback)

    def call_soon(self, callback: "Callable[..., object]") -> None:
        self._ready.append(callback)

    def call_soon_threadsafe(self, callback: "Callable[..., object]") -> None:
        """Run `callback` on the loop's thread soon; safe from any thread."""
        if self._wake_w is None:
            raise RuntimeError("call enable_threads() on the loop's thread first")
        self._ready.append(callback)  # list.append is atomic under the GIL
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def enable_threads(self) -> None:
        """Prepare the wake-up pipe used by call_soon_threadsafe (lazily: most runs need none)."""
        if self._wake_w is None:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.add_reader(self._wake_r, self._drain_wakeups)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):  # type: ignore[arg-type]  # set by enable_threads
                pass
        except BlockingIOError:
            pass

    def run_in_thread(self, fn: "Callable[[], Any]",
                      done: "Callable[[Any, BaseException | None], object]") -> "threading.Thread":
        """Run `fn()` on a new daemon thread; `done(result, error)` runs on the loop's thread."""
        import threading

        self.enable_threads()

        def work() -> None:
            try:
                result, error = fn(), None
            except BaseException as err:  # handed to the loop's thread, never lost
                result, error = None, err
            self.call_soon_threadsafe(lambda: done(result, error))

        thread = threading.Thread(target=work, daemon=True, name="shim-worker")
        thread.start()
        return thread

    # -- running ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopped = True

    def run_until(self, predicate: "Callable[..., object]", deadline: "float | None" = None) -> bool:
        """Run iterations until `predicate()` is true (or `stop()`, or `deadline` passes).

        Returns True when the predicate became true.
        """
        self._stopped = False
        while not predicate():
            if self._stopped:
                return False
            if deadline is not None and self.clock() >= deadline:
                return False
            self.run_once(deadline)
        return True

    def run_once(self, deadline: "float | None" = None) -> None:
        """Wait for the next event (or timer) and run what is due."""
        timeout = self._timeout(deadline)
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            events = []
        for fd, mask in events:
            if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR) and fd in self._readers:
                self._readers[fd]()
            if mask & (select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR) and fd in self._writers:
                self._writers[fd]()
        self._run_ready()
        self._run_timers()

    def _timeout(self, deadline):
        if self._ready:
            return 0
        self._prune()
        ends = [t for t in ((self._timers[0].when if self._timers else None), deadline)
                if t is not None]
        if not ends:
            return -1
        return max(0.0, min(ends) - self.clock())

    def _prune(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)

    def _run_ready(self) -> None:
        ready, self._ready = self._ready, []
        for callback in ready:
            callback()

    def _run_timers(self) -> None:
        now = self.clock()
        while self._timers and (self._timers[0].cancelled or self._timers[0].when <= now):
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
        self._run_ready()

    def close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None
        self._epoll.close()
