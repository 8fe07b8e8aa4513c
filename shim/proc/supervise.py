"""Supervise children the way tini does, as sources on the one event loop.

`Supervisor` is the policy for one child, a small state machine:

    running --(timeout | cancel file | end(reason))--> terminating --(grace)--> KILL
       |                                                   |
       +------------------ child exits --------------------+--> exited

It talks only to its ports (the loop's timers, `send`, `exists`), so the unit
tier drives it with fakes.  `Resident` owns the loop, the signalfd and the one
reaper, runs a Supervisor to completion, and drains leftover descendants
(TERM, grace, KILL) after the delegate exits.
"""

import _signal as signal
import os

from shim.errors import REASON_CANCELLED, REASON_TIMEOUT
from shim.proc.reaper import Reaper, has_children, remaining, signal_descendants
from shim.proc.signals import JOB_STOPS

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable

    from shim.proc.reaper import Exit

RUNNING, TERMINATING, EXITED = "running", "terminating", "exited"
DRAIN_RECHECK = 0.05  # during drain only: grandchildren's deaths send us no SIGCHLD
KILL_WAIT = 5.0  # after KILL, how long drain waits for the kernel before giving up
IGNORE = 0  # a rewrite to signal 0 drops the signal (dumb-init's -r SIG:0)
CLD_STOPPED = 5  # si_code of the SIGCHLD for a stopped child
# --stop-delay holds these (the ones that mean "stop"); HUP, USR1... pass at once.
DELAYED = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def send_signal(pid: int, sig: int, group: bool) -> None:
    """Signal `pid` (or its process group); a child that is already gone is not an error."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # it exited (or its group is empty); reaping will tell


class Supervisor:
    """The policy for one child: forward signals, enforce deadlines, end it with TERM→KILL.

    Ports (replaceable in tests): `loop` (call_later, time), `send(pid, sig, group)`,
    `exists(path)`.
    """

    def __init__(self, loop, rewrite=None, group=False, grace=10.0, timeout=None,
                 cancel_file=None, poll_interval=0.1, send=send_signal, exists=os.path.exists,
                 stop_delay=None, job_control=None, log=None):
        self.loop = loop
        self.rewrite = rewrite or {}
        self.group = group
        self.grace = grace
        self.timeout = timeout
        self.cancel_file = cancel_file
        self.poll_interval = poll_interval
        self.send = send
        self.exists = exists
        self.state = None
        self.pid = None
        self.reason = None  # why shim ended the child (timeout, cancelled, ...), if it did
        self.result = None  # the child's Exit once it is known
        self.forwarded = 0  # signals forwarded, for the report
        self.job_control = job_control  # a JobControl when shim is a job of a shell
        self._timers = []
        self.stop_delay = stop_delay  # --stop-delay: hold the first stop signal this long
        self.delay = {"delayed": 0, "skipped": 0, "held_s": 0.0}  # for the report
        self._held = None  # (signo, since, timer) while a stop signal is held
        self.log = log or (lambda level, message: None)

    @property
    def done(self) -> bool:
        return self.state == EXITED

    def start(self, pid: int) -> None:
        self.pid, self.state = pid, RUNNING
        if self.timeout:  # zero or None: no timeout
            self._timers.append(self.loop.call_later(self.timeout, lambda: self.end(REASON_TIMEOUT)))
        if self.cancel_file:
            self._poll_cancel()

    def _poll_cancel(self) -> None:
        if self.state != RUNNING:
            return
        if self.exists(self.cancel_file):
            self.end(REASON_CANCELLED)
            return
        self._timers.append(self.loop.call_later(self.poll_interval, self._poll_cancel))

    def on_signal(self, signo: int) -> None:
        """A signal shim received while the child runs: forward it (rewritten).

        With --stop-delay the first stop signal is held for the delay (the load balancer's
        deregistration window) and forwarded after it; a second one forwards at once.  Then
        the usual end: still running after --grace, the delegate gets KILL.
        """
        if self.state not in (RUNNING, TERMINATING):
            return
        if self.rewrite.get(signo, signo) == IGNORE:  # --rewrite SIG:0
            return
        if self.stop_delay and signo in DELAYED and self.state == RUNNING:
            if self._held is None and not self.delay["delayed"]:
                self.delay["delayed"] += 1
                timer = self.loop.call_later(self.stop_delay, lambda: self._release(False))
                self._held = (signo, self.loop.time(), timer)
                self._timers.append(timer)
                self.log("info", f"stop signal {signo} held for {self.stop_delay:g}s "
                                 "(--stop-delay); a second one forwards it at once")
                return
            if self._held is not None:  # the second stop signal: no more waiting
                self._release(True, signo)
                return
        self._forward(signo)

    def _release(self, skipped, signo=None) -> None:
        held, since, timer = self._held  # type: ignore[misc]  # called only while one is held
        self._held = None
        timer.cancel()
        self.delay["skipped"] += int(skipped)
        self.delay["held_s"] = round(self.loop.time() - since, 3)
        self._forward(signo if signo is not None else held)
        self._timers.append(self.loop.call_later(self.grace, self._kill_after_stop))

    def _kill_after_stop(self) -> None:
        if self.state == RUNNING:
            self.delay["killed"] = 1
            self.send(self.pid, signal.SIGKILL, self.group)

    def _forward(self, signo) -> None:
        if signo == signal.SIGCONT and self.job_control is not None:
            self.job_control.resumed(self.pid)  # the terminal back to the delegate first
        self.forwarded += 1
        self.send(self.pid, self.rewrite.get(signo, signo), self.group)
        if signo in JOB_STOPS and self.job_control is not None:
            self.job_control.stop_self(forwarded=True)  # as dumb-init: the shell sees it stop

    def on_child_stopped(self, pid: int) -> None:
        """The delegate was stopped (Ctrl-Z went to its own group, or a background read):
        as a shell's job, stop shim too so the shell sees the job stopped."""
        if pid == self.pid and self.state == RUNNING and self.job_control is not None:
            self.job_control.child_stopped()

    def end(self, reason: str) -> None:
        """Terminate the child because of `reason`: TERM (rewritten) now, KILL after grace."""
        if self.state != RUNNING:
            return
        self.state, self.reason = TERMINATING, reason
        self.send(self.pid, self.rewrite.get(signal.SIGTERM, signal.SIGTERM) or signal.SIGTERM,
                  self.group)
        self._timers.append(self.loop.call_later(self.grace, self._kill))

    def _kill(self) -> None:
        if self.state == TERMINATING:
            self.send(self.pid, signal.SIGKILL, self.group)

    def on_exit(self, result: "Exit") -> None:
        """The reaper found the child's status."""
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        if self.reason:
            result.reason = self.reason
        self.state, self.result = EXITED, result


class Resident:
    """The resident shim: one loop, signals as a loop source, one reaper.

    Signals go to the running Supervisor (if any); SIGCHLD only triggers reaping.
    Other capabilities add their own sources to `loop` and may call
    `current.end(reason)` (a lost heartbeat, for instance).
    """

    def __init__(self, signals, loop=None, reaper=None):
        if loop is None:
            from shim.loop import Loop

            loop = Loop()
        self.loop = loop
        self.signals = signals
        self.reaper = reaper or Reaper()
        self.current = None
        signals.attach(loop, self.on_signal)

    def on_signal(self, signo: int, code: int, pid: int) -> None:
        if signo == signal.SIGCHLD:
            if code == CLD_STOPPED and self.current is not None:
                self.current.on_child_stopped(pid)
            self.reaper.reap()
        elif self.current is not None:
            self.current.on_signal(signo)

    def supervise(self, pid: int, supervisor: "Supervisor") -> "Exit":
        """Run `supervisor` over child `pid` until the child has exited; returns its Exit."""
        self.reaper.watch(pid, supervisor.on_exit)
        pidfd = _pidfd(pid)
        if pidfd is not None:  # the delegate's exit wakes the loop even if SIGCHLD coalesced
            self.loop.add_reader(pidfd, self.reaper.reap)
        self.current = supervisor
        try:
            supervisor.start(pid)
            self.reaper.reap()  # it may have exited before we watched
            self.loop.run_until(lambda: supervisor.done)
        finally:
            self.current = None
            if pidfd is not None:
                self.loop.remove_reader(pidfd)
                os.close(pidfd)
        return supervisor.result  # type: ignore[return-value]  # set: run_until saw it done

    def wait_until(self, predicate: "Callable[[], object]", deadline: "float | None" = None) -> bool:
        """Run the loop (signals, reaping, other sources) until `predicate()` or a stop signal."""
        return self.loop.run_until(lambda: predicate() or self.signals.stop_signal is not None,
                                   deadline)

    def drain(self, is_pid1: bool, grace: "float | None") -> None:
        """TERM every remaining descendant, wait up to `grace`, then KILL; reap them all."""
        self.reaper.reap()
        if not has_children() or not remaining(is_pid1):
            return
        signal_descendants(signal.SIGTERM, is_pid1)
        state = {"killed_at": None, "gave_up": False}

        def kill() -> None:
            signal_descendants(signal.SIGKILL, is_pid1)
            state["killed_at"] = self.loop.time()
            self.loop.call_later(KILL_WAIT, lambda: state.update(gave_up=True))

        def recheck() -> None:
            self.reaper.reap()
            timers.append(self.loop.call_later(DRAIN_RECHECK, recheck))

        timers = [self.loop.call_later(grace, kill), self.loop.call_later(DRAIN_RECHECK, recheck)]
        try:
            self.loop.run_until(lambda: state["gave_up"] or not remaining(is_pid1))
        finally:
            for timer in timers:
                timer.cancel()
        self.reaper.reap()

    def close(self) -> None:
        self.signals.close()
        self.loop.close()


class JobControl:
    """shim as a job of an interactive shell (not PID 1, with a controlling terminal):
    when the delegate stops, shim stops itself (SIGSTOP) so `fg`/`bg` work; on SIGCONT
    the terminal goes back to the delegate's group if shim was put in the foreground.
    dumb-init does the same; tini does not."""

    def __init__(self, foreground_group=False, tty_fd=0):
        self.foreground_group = foreground_group  # the delegate leads the terminal's group
        self.tty_fd = tty_fd
        # shim stopped after forwarding a TSTP: the delegate's own stop report (SIGCHLD,
        # read after we are continued) is that same stop, not a new one.
        self.expect_child_stop = False

    @classmethod
    def detect(cls, is_pid1: bool, foreground_group: int) -> "JobControl | None":
        """A JobControl when shim is not PID 1 and has a controlling terminal, else None."""
        if is_pid1:
            return None
        try:
            fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None  # no controlling terminal: no shell to hand a stopped job to
        os.close(fd)
        return cls(foreground_group)

    def child_stopped(self) -> None:
        if self.expect_child_stop:
            self.expect_child_stop = False
            return
        self.stop_self()

    def stop_self(self, forwarded: bool = False) -> None:
        self.expect_child_stop = forwarded
        if self.foreground_group:
            _take_terminal(self.tty_fd, os.getpgrp())  # the shell reads the terminal next
        os.kill(os.getpid(), signal.SIGSTOP)

    def resumed(self, pid: int) -> None:
        self.expect_child_stop = False
        # `fg` gave the terminal to shim's group: pass it on to the delegate's (not on `bg`).
        if self.foreground_group and _foreground(self.tty_fd) == os.getpgrp():
            _take_terminal(self.tty_fd, pid)


def _foreground(fd):
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None


def _take_terminal(fd, pgrp) -> None:
    try:
        os.tcsetpgrp(fd, pgrp)  # SIGTTOU is blocked: this cannot stop shim
    except OSError:
        pass


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # kernel < 5.3 or a seccomp filter: SIGCHLD alone does it
