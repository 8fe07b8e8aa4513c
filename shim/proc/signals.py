"""The signal state shim inherited, and signals as events on the loop.

Every catchable signal is blocked first thing in a run (the static launcher does
it even before Python starts), so none is lost in any phase.  Blocked signals are
then read from a signalfd registered on the event loop: no Python signal handler
ever runs, and the same loop also waits for children, files, sockets and timers.
Children get back exactly the mask and dispositions shim inherited.
"""

# The C module, not `signal`: the wrapper imports enum (and with it functools and
# collections), a few milliseconds of start-up that supervision never needs.
import _signal as signal
import os

from shim.proc import native

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable

    from shim.loop import Loop

# Fault signals are blocked and forwarded like the rest when they are sent with kill()
# (dumb-init does the same).  Blocking cannot swallow a real fault in shim: the kernel
# delivers a synchronous SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP/SIGSYS (and abort()'s
# SIGABRT) by unblocking it and resetting it to its default action, so shim still dies.
FAULT_SIGNALS = frozenset({signal.SIGFPE, signal.SIGILL, signal.SIGSEGV, signal.SIGBUS,
                           signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS})
CATCHABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
# The terminal's job-control stops (Ctrl-Z, a background read or write).
JOB_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
# Signals that, arriving before the delegate starts, abort the run.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP})
# CPython itself sets these to SIG_IGN at start-up (not in the static build, whose
# launcher turns install_signal_handlers off): from source, their inherited
# disposition is unknowable and children get the default.
PYTHON_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})
# Signals the kernel sends to a process group on its own (terminal, job control):
# shim never forwards these when the child is already in that foreground group.
SI_KERNEL = 0x80
POLL_INTERVAL = 0.01  # without the C module: how often blocked signals are collected


class Signals:
    """What shim inherited (mask, ignored set) and the queue it collects signals from.

    Created first thing in a run: from then on no signal is lost.
    """

    def __init__(self):
        self.inherited_mask = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
        started_with = native.initial_sigmask()  # the static launcher blocked signals before us
        if started_with is not None:
            self.inherited_mask = set(started_with)
        self.inherited_ignored = _ignored_now()
        # SIGCHLD must not be ignored, or the kernel reaps children behind our back.
        if signal.SIGCHLD in self.inherited_ignored:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.stop_signal = None  # first STOP_SIGNAL received, if any
        self.ignored: frozenset[int] = frozenset()  # signals dropped on arrival (--rewrite SIG:0)
        self._fd = None
        self._handler = None
        self._poll = None  # the polling timer, without the C module
        self._loop: "Loop" = None  # type: ignore[assignment]  # set by attach() to poll

    # -- as a loop source ----------------------------------------------------------------
    def attach(self, loop: "Loop", handler: "Callable[[int, int, int], object]") -> "Signals":
        """Deliver every signal to `handler(signo, code, pid)` from the loop.  Returns self."""
        self._handler = handler
        if self._fd is None and native.has_native():
            self._fd = native.signalfd(sorted(CATCHABLE))
            loop.add_reader(self._fd, self._read)
        elif self._fd is None and self._poll is None:
            # Without the C module (Nuitka/PyInstaller comparison builds): poll the
            # blocked signals; still no handler, only POLL_INTERVAL more latency.
            self._loop = loop
            self._poll = loop.call_later(0, self._poll_pending)
        return self

    def _read(self) -> None:
        self._dispatch(native.read_signals(self._fd))  # type: ignore[arg-type]  # open: attached

    def _poll_pending(self) -> None:
        found = []
        while True:
            info = signal.sigtimedwait(CATCHABLE, 0)
            if info is None:
                break
            found.append((info.si_signo, info.si_code, info.si_pid))
        self._dispatch(found)
        self._poll = self._loop.call_later(POLL_INTERVAL, self._poll_pending)

    def ignore(self, signos: "list[int] | set[int] | frozenset[int]") -> None:
        """Drop these signals on arrival from now on: neither forwarded nor acted on."""
        self.ignored = frozenset(signos)

    def _dispatch(self, infos) -> None:
        for signo, code, pid in infos:
            if signo in self.ignored:
                continue
            if signo in STOP_SIGNALS and self.stop_signal is None:
                self.stop_signal = signo
            if self._handler is not None:
                self._handler(signo, code, pid)

    def pending_stop(self) -> "int | None":
        """Poll once, without a loop: the first stop signal received so far (or None).

        For synchronous phases (reading big env files) that must honour SIGTERM promptly.
        """
        while True:
            wanted = STOP_SIGNALS - self.ignored
            info = signal.sigtimedwait(wanted, 0) if wanted else None
            if info is None:
                return self.stop_signal
            if self.stop_signal is None:
                self.stop_signal = info.si_signo

    # -- for children -------------------------------------------------------------------
    def child_ignored(self) -> "list[int]":
        """The signals a child must start with SIG_IGN: what shim inherited as ignored."""
        return sorted(self.inherited_ignored)

    def restore_for_exec(self) -> None:
        """Before execve in exec mode: give the delegate shim's inherited state."""
        for sig in PYTHON_IGNORED | {signal.SIGCHLD}:
            signal.signal(sig, signal.SIG_IGN if sig in self.inherited_ignored else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.inherited_mask)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None


def _ignored_now():
    """Signals currently at SIG_IGN, less the ones CPython ignored itself (source runs)."""
    ignored = set()
    for sig in CATCHABLE | {signal.SIGCHLD}:
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                ignored.add(sig)
        except (OSError, ValueError):
            continue
    if not native.is_static_build():
        ignored -= PYTHON_IGNORED
    return ignored
