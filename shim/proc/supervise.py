"""Spawn and supervise a child the way tini does.

Signals are handled synchronously: every catchable signal is blocked as soon as
shim starts, collected with `sigtimedwait`, and forwarded (optionally rewritten)
to the child or its process group; SIGCHLD only triggers reaping.  Every child
is reaped with `waitpid(-1)`, so orphans re-parented to shim (as PID 1 or as a
child subreaper) never linger as zombies.  The child is spawned with the signal
mask and dispositions shim inherited, so it cannot tell shim was there.
"""

import os
import time

# The C module, not `signal`: the wrapper imports enum (and with it functools and
# collections), a few milliseconds of start-up that supervision never needs.
import _signal as signal

from shim.errors import (REASON_CANCELLED, REASON_EXITED, REASON_NOT_EXECUTABLE,
                         REASON_NOT_FOUND, REASON_SIGNALED, REASON_TIMEOUT, ShimError)

# Synchronous fault signals stay unblocked (a fault in shim must not be swallowed).
FAULT_SIGNALS = {signal.SIGFPE, signal.SIGILL, signal.SIGSEGV, signal.SIGBUS,
                 signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}
CATCHABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP} - FAULT_SIGNALS
# Signals that, arriving before the delegate starts, abort the run.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP})
# CPython sets these to SIG_IGN at start-up; a child must get them at their default.
PYTHON_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


class Signals:
    """The signal state shim inherited, and the queue it collects signals from.

    Created first thing in a run: from then on no signal is lost, whatever
    phase (hooks, waiting, supervision) it arrives in.
    """

    def __init__(self):
        from shim.proc.native import initial_sigmask

        self.inherited_mask = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
        started_with = initial_sigmask()  # the static launcher blocked signals before us
        if started_with is not None:
            self.inherited_mask = set(started_with)
        # SIGCHLD must not be ignored, or the kernel reaps children behind our back.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.stop_signal = None  # first STOP_SIGNAL received, if any

    def wait(self, timeout):
        """Next signal number within `timeout` seconds (0 polls), or None."""
        info = signal.sigtimedwait(CATCHABLE, max(0.0, timeout))
        if info is None:
            return None
        if info.si_signo in STOP_SIGNALS and self.stop_signal is None:
            self.stop_signal = info.si_signo
        return info.si_signo

    def restore_for_exec(self):
        """Undo shim's changes before execve (the kernel keeps mask and SIG_IGN)."""
        for sig in PYTHON_IGNORED | {signal.SIGCHLD}:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.inherited_mask)


class Exit:
    """How a child ended: the shell-style code, the killing signal, and why."""

    __slots__ = ("code", "signal", "reason")

    def __init__(self, code, sig=None, reason=REASON_EXITED):
        self.code, self.signal, self.reason = code, sig, reason

    @classmethod
    def from_status(cls, status):
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return cls(128 + sig, sig, REASON_SIGNALED)
        return cls(os.waitstatus_to_exitcode(status) & 0xFF)

    def __repr__(self):
        return f"Exit(code={self.code}, signal={self.signal}, reason={self.reason!r})"


def spawn(path, argv, env, signals, new_group=False, stdout_to_stderr=False, terminal=True):
    """Start `path` with `argv`/`env` and shim's inherited signal state; returns the pid.

    fork + exec rather than posix_spawn: glibc's posix_spawn leaves its internal
    signals (32, 33) at SIG_IGN in the child, which then survives exec.  An exec
    failure comes back through a close-on-exec pipe as an errno.
    """
    rfd, wfd = os.pipe()  # both close-on-exec
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work, then exec or _exit
        try:
            os.close(rfd)
            if new_group:
                os.setpgid(0, 0)
            if stdout_to_stderr:
                os.dup2(2, 1)
            signals.restore_for_exec()
            os.execve(path, argv, env)
        except OSError as err:
            os.write(wfd, str(err.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(wfd)
    with open(rfd, "rb") as pipe:
        report = pipe.read()
    if report:
        os.waitpid(pid, 0)
        raise exec_error(int(report), argv[0])
    if new_group and terminal:
        _give_terminal(pid)
    return pid


def exec_error(errno_value, name):
    """The ShimError for a failed execve: 127 when something is missing, else 126."""
    import errno

    if errno_value == errno.ENOENT:
        return ShimError("exec", name, "no such file (or its #! interpreter is missing)",
                         "check the path and the #! line", reason=REASON_NOT_FOUND)
    cause = os.strerror(errno_value).lower() if errno_value else "exec failed"
    return ShimError("exec", name, cause,
                     "check that it is a program for this architecture and is executable",
                     reason=REASON_NOT_EXECUTABLE)


def _give_terminal(pgid):
    """Like tini -g: a child in its own group becomes the terminal's foreground group."""
    try:
        if os.isatty(0):
            os.tcsetpgrp(0, pgid)
    except OSError:
        pass


class Supervisor:
    """Waits for one child while forwarding signals, reaping, and enforcing deadlines.

    Collaborators are attributes so tests can replace them: `clock`, `exists`.
    """

    def __init__(self, signals, rewrite=None, group=False, grace=10.0, timeout=None,
                 cancel_file=None, poll_interval=0.1, clock=time.monotonic, exists=os.path.exists):
        self.signals = signals
        self.rewrite = rewrite or {}
        self.group = group
        self.grace = grace
        self.timeout = timeout
        self.cancel_file = cancel_file
        self.poll_interval = poll_interval
        self.clock = clock
        self.exists = exists

    def run(self, pid):
        """Supervise `pid` until it exits; returns its Exit (reason timeout/cancelled if we ended it)."""
        start = self.clock()
        deadline = start + self.timeout if self.timeout else None
        ending_reason, kill_at, status = None, None, None
        while status is None:
            now = self.clock()
            sig = self.signals.wait(self._next_wake(now, deadline, kill_at))
            if sig is not None and sig != signal.SIGCHLD:
                self._send(pid, self.rewrite.get(sig, sig))
            status = reap(pid)
            if status is not None:
                break
            now = self.clock()
            if ending_reason is None:
                ending_reason = self._why_end(now, deadline)
                if ending_reason:
                    self._send(pid, self.rewrite.get(signal.SIGTERM, signal.SIGTERM))
                    kill_at = now + self.grace
            elif kill_at is not None and now >= kill_at:
                self._send(pid, signal.SIGKILL)
                kill_at = None
        result = Exit.from_status(status)
        if ending_reason:
            result.reason = ending_reason
        return result

    def _why_end(self, now, deadline):
        if deadline is not None and now >= deadline:
            return REASON_TIMEOUT
        if self.cancel_file and self.exists(self.cancel_file):
            return REASON_CANCELLED
        return None

    def _next_wake(self, now, deadline, kill_at):
        wake = 1.0 if not self.cancel_file else self.poll_interval
        for t in (deadline, kill_at):
            if t is not None:
                wake = min(wake, t - now)
        return max(wake, 0.0)

    def _send(self, pid, sig):
        try:
            if self.group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass  # it exited; reaping will tell

    def drain(self, is_pid1):
        """After the delegate exits: TERM every remaining descendant, wait `grace`, KILL."""
        if not has_children() or not remaining(is_pid1):
            return
        signal_descendants(signal.SIGTERM, is_pid1)
        end = self.clock() + self.grace
        while remaining(is_pid1):
            now = self.clock()
            if now >= end:
                signal_descendants(signal.SIGKILL, is_pid1)
                end = now + 5.0  # KILL cannot be ignored; bound the wait anyway
                if not remaining(is_pid1):
                    break
            self.signals.wait(min(0.05, max(0.0, end - now)))
            reap(None)
        reap(None)


def reap(pid):
    """Reap every exited child; return the wait status of `pid` if it was among them."""
    found = None
    while True:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if child == 0:
            return found
        if child == pid:
            found = status


def has_children():
    """Whether any child is left (every descendant is one's, or ours as init/subreaper).

    One waitid() instead of reading every /proc/*/stat in the common case: nothing left.
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return True
    except ChildProcessError:
        return False


def descendants(root=None):
    """Pids of every live descendant of `root` (default: this process), from /proc."""
    root = os.getpid() if root is None else root
    children = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if fields and fields[0] != b"Z":  # zombies are only waiting to be reaped
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def remaining(is_pid1):
    pids = descendants()
    if pids is not None:
        return bool(pids)
    if is_pid1:  # no /proc: as init, kill(-1, 0) says whether anyone else is alive
        try:
            os.kill(-1, 0)
            return True
        except OSError:
            return False
    return False


def signal_descendants(sig, is_pid1):
    pids = descendants()
    if pids is None:
        if is_pid1:
            try:
                os.kill(-1, sig)
            except OSError:
                pass
        return
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
