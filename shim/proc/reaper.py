"""The one reaper: every `waitpid` of the supervising process happens here.

Children are reaped with `waitpid(-1)` whenever SIGCHLD (or the delegate's pidfd)
says one exited, so orphans re-parented to shim (as PID 1 or child subreaper)
never linger as zombies.  Whoever spawned a pid registers for its status.
"""

import os

from shim.errors import REASON_EXITED, REASON_SIGNALED

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable


class Exit:
    """How a child ended: the shell-style code, the killing signal, and why."""

    __slots__ = ("code", "signal", "reason")

    def __init__(self, code, sig=None, reason=REASON_EXITED):
        self.code, self.signal, self.reason = code, sig, reason

    @classmethod
    def from_status(cls, status: int) -> "Exit":
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return cls(128 + sig, sig, REASON_SIGNALED)
        return cls(os.waitstatus_to_exitcode(status) & 0xFF)

    def __repr__(self) -> str:
        return f"Exit(code={self.code}, signal={self.signal}, reason={self.reason!r})"


class Reaper:
    """Reaps every child; hands the status of a watched pid to its callback.

    `waitpid` is injectable for tests.
    """

    def __init__(self, waitpid=os.waitpid):
        self.waitpid = waitpid
        self._watchers = {}  # pid -> callback(Exit)
        self.reaped = 0  # children reaped (orphans included), for the report

    def watch(self, pid: int, callback: "Callable[[Exit], object]") -> None:
        self._watchers[pid] = callback

    def reap(self) -> None:
        """Collect every exited child now (non-blocking)."""
        while True:
            try:
                pid, status = self.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped += 1
            callback = self._watchers.pop(pid, None)
            if callback is not None:
                callback(Exit.from_status(status))


def has_children() -> bool:
    """Whether any child is left (one waitid() instead of a /proc scan in the common case)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return True
    except ChildProcessError:
        return False


def descendants(root: "int | None" = None) -> "list[int] | None":
    """Pids of every live descendant of `root` (default: this process), from /proc."""
    root = os.getpid() if root is None else root
    children: dict = {}
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


def remaining(is_pid1: bool) -> bool:
    """Whether any live descendant is left."""
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


def signal_descendants(sig: int, is_pid1: bool) -> None:
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
