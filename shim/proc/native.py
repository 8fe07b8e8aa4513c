"""Linux calls the stdlib does not wrap: signalfd, spawn, child subreaper, inotify,
process name.

`_shim_native` is a builtin module of the static binary and an extension module
of a source install (pip builds it).  Where it cannot exist (the Nuitka and
PyInstaller comparison builds, which link no extra C), signals are polled and
spawn runs Python between fork and exec — a degraded mode, safe only while shim
has no other thread.  The others fall back to ctypes, then to a documented
no-op/polling path.  Imports happen on first use so the run path pays only for
what it needs.
"""

import os
import sys

from shim.errors import REASON_SETUP, ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x4, 0x8, 0x80, 0x100
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800

_libc = None


def _builtin():
    try:
        import _shim_native

        return _shim_native
    except ImportError:
        return None


def _c():
    """The C library through ctypes, or None where ctypes cannot load it."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.prctl  # noqa: B018 - probe that symbols resolve
        except (ImportError, OSError, AttributeError):
            _libc = False  # type: ignore[assignment]  # probed: unavailable (None: not yet)
    return _libc or None


def has_native() -> bool:
    return _builtin() is not None


def _required():
    mod = _builtin()
    if mod is None:
        raise ShimError("supervise", "delegate", "the _shim_native module is missing from this "
                        "install", "reinstall with 'pip install .' (it builds the C module), or "
                        "use the static binary", reason=REASON_SETUP)
    return mod


def is_static_build() -> bool:
    """True in the static binary (its launcher leaves signal dispositions untouched)."""
    return "_shim_native" in sys.builtin_module_names


def signalfd(signals: "list[int]") -> int:
    """A non-blocking, close-on-exec signalfd for `signals` (which must be blocked)."""
    return _required().signalfd(signals)


def read_signals(fd: int) -> "list[tuple[int, int, int]]":
    """[(signo, code, sender_pid)] of every signal queued on a signalfd."""
    return _required().read_signals(fd)


def spawn(path: bytes, argv: "list[bytes]", env: "list[bytes]", mask: "list[int]", ignored: "list[int]",
          new_group: bool, tty_fd: int, fds: "tuple[int, int, int]", cwd: "str | None" = None,
          identity: "dict[str, Any] | None" = None) -> int:
    """fork + exec in C; see build/static/shim_native.c.  Raises OSError on failure, with
    the child's step ("exec", "cwd", "uid"...) as its filename."""
    mod = _builtin()
    if mod is None:
        return _spawn_python(path, argv, env, mask, ignored, new_group, tty_fd, fds, cwd,
                             identity)
    return mod.spawn(path, argv, env, mask, ignored, new_group, tty_fd, fds, cwd, identity)


def become(identity: "dict[str, Any] | None") -> None:
    """Exec mode: apply an identity spec (shim.proc.identity.Identity.spec) to this process."""
    if identity is None:
        return
    mod = _builtin()
    if mod is None:
        _check_python_identity(identity)
        _become_python(identity)
        return
    mod.become(identity)


# What the Python fallback can do itself; capabilities and no_new_privs need prctl/capset.
_PYTHON_IDENTITY = frozenset({"uid", "gid", "groups", "umask", "rlimits", "ctty"})


def _check_python_identity(identity):
    extra = sorted(set(identity or ()) - _PYTHON_IDENTITY)
    if extra:
        raise ShimError("start", "delegate", "capabilities and no-new-privileges need the "
                        "_shim_native module, missing from this build",
                        "use the static binary or a source install ('pip install .'), or drop "
                        "--cap-keep/--cap-drop/--no-new-privileges", reason=REASON_SETUP)


def _become_python(identity) -> None:
    """--user, --groups, --umask, --rlimit in Python (the fallback; same order as the C)."""
    import resource

    if identity.get("umask") is not None:
        os.umask(identity["umask"])
    for res, soft, hard in identity.get("rlimits", ()):
        inf = resource.RLIM_INFINITY
        resource.setrlimit(res, (inf if soft == 2**64 - 1 else soft,
                                 inf if hard == 2**64 - 1 else hard))
    if identity.get("uid") is not None:
        os.setgroups(identity.get("groups", []))
        os.setresgid(identity["gid"], identity["gid"], identity["gid"])
        os.setresuid(identity["uid"], identity["uid"], identity["uid"])


def _spawn_python(path, argv, env, mask, ignored, new_group, tty_fd, fds, cwd=None,
                  identity=None):
    """The same steps as the C spawn, in Python: only for builds without _shim_native."""
    import _signal as signal

    _check_python_identity(identity)
    import fcntl  # before the fork: the child imports nothing
    sctty = 0
    if identity and identity.get("ctty") is not None:  # only capture's pty needs termios: a
        import termios  # freezer that leaves it out (a .so in Nuitka's standalone) still runs

        sctty = termios.TIOCSCTTY

    environ = dict(item.split(b"=", 1) for item in env)
    rfd, wfd = os.pipe()  # both close-on-exec
    pid = os.fork()
    if pid == 0:  # child: no allocation-heavy work, then exec or _exit
        step = "setup"
        try:
            os.close(rfd)
            if new_group:
                os.setpgid(0, 0)
                if tty_fd >= 0:
                    try:
                        os.tcsetpgrp(tty_fd, os.getpid())
                    except OSError:
                        pass
            for i, fd in enumerate(fds):
                if fd >= 0 and fd != i:
                    os.dup2(fd, i)
            if identity and identity.get("ctty") is not None:  # as the C: a pty session
                os.setsid()
                fcntl.ioctl(identity["ctty"], sctty, 0)
            step = "cwd"
            if cwd is not None:
                os.chdir(cwd)
            step = "uid"
            if identity:
                _become_python(identity)
            step = "setup"
            for sig in range(1, signal.NSIG):
                try:
                    signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)
                except (OSError, ValueError, RuntimeError):
                    pass
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            step = "exec"
            os.execve(path, argv, environ)
        except OSError as err:
            os.write(wfd, f"{err.errno or 0} {step}".encode())
        finally:
            os._exit(127)
    os.close(wfd)
    with open(rfd, "rb") as pipe:
        report = pipe.read()
    if report:
        os.waitpid(pid, 0)
        code, _, step = report.decode().partition(" ")
        raise OSError(int(code), os.strerror(int(code)), step or "exec")
    return pid


def initial_sigmask() -> "list[int] | None":
    """The signal mask the process started with, if a launcher blocked signals before
    Python ran (the static build does, so no signal is lost during start-up); else None."""
    mod = _builtin()
    get = getattr(mod, "initial_sigmask", None)
    return None if get is None else get()


def set_child_subreaper(on: bool = True) -> bool:
    """Make orphaned descendants re-parent to this process (or stop). True on success."""
    mod = _builtin()
    if mod is not None:
        try:
            mod.set_child_subreaper(1 if on else 0)
            return True
        except OSError:
            return False
    libc = _c()
    if libc is None:
        return False
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0


def set_process_name(name: str) -> None:
    """Set the process title (setproctitle if installed) or at least its comm name."""
    try:
        import setproctitle

        setproctitle.setproctitle(name)
        return
    except ImportError:
        pass
    raw = name.encode("utf-8", "replace")[:15]
    mod = _builtin()
    if mod is not None:
        mod.set_name(raw)
        return
    libc = _c()
    if libc is not None:
        libc.prctl(PR_SET_NAME, raw, 0, 0, 0)


class Inotify:
    """A non-blocking inotify descriptor; `fileno()` works with select()."""

    def __init__(self, fd, add_watch):
        self.fd = fd
        self._add_watch = add_watch

    def fileno(self) -> int:
        return self.fd

    def watch(self, path: str, mask: int = IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE) -> bool:
        """Watch `path` (a directory); returns False when it cannot be watched."""
        return self._add_watch(self.fd, os.fsencode(path), mask) >= 0

    def drain(self) -> None:
        """Discard queued events; the caller re-checks the files it cares about."""
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


def inotify() -> "Inotify | None":
    """An Inotify, or None when neither the builtin module nor ctypes can make one."""
    flags = IN_CLOEXEC | IN_NONBLOCK
    mod = _builtin()
    if mod is not None:
        try:
            return Inotify(mod.inotify_init1(flags), _builtin_add_watch(mod))
        except OSError:
            return None
    libc = _c()
    if libc is None:
        return None
    fd = libc.inotify_init1(flags)
    if fd < 0:
        return None
    return Inotify(fd, libc.inotify_add_watch)


def _builtin_add_watch(mod):
    def add_watch(fd: int, path: bytes, mask: int) -> int:
        try:
            return mod.inotify_add_watch(fd, path, mask)
        except OSError:
            return -1

    return add_watch
