"""Linux calls the stdlib does not wrap: child subreaper, inotify, process name.

Each call tries, in order: the `_shim_native` builtin module (compiled into the
static binary), ctypes on the C library, then a documented fallback.  Imports
happen on first use so the run path pays only for what it needs.
"""

import os

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
            _libc = False
    return _libc or None


def initial_sigmask():
    """The signal mask the process started with, if a launcher blocked signals before
    Python ran (the static build does, so no signal is lost during start-up); else None."""
    mod = _builtin()
    get = getattr(mod, "initial_sigmask", None)
    return None if get is None else get()


def set_child_subreaper():
    """Make orphaned descendants re-parent to this process. Returns True on success."""
    mod = _builtin()
    if mod is not None:
        try:
            mod.set_child_subreaper()
            return True
        except OSError:
            return False
    libc = _c()
    if libc is None:
        return False
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def set_process_name(name):
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

    def fileno(self):
        return self.fd

    def watch(self, path, mask=IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE):
        """Watch `path` (a directory); returns False when it cannot be watched."""
        return self._add_watch(self.fd, os.fsencode(path), mask) >= 0

    def drain(self):
        """Discard queued events; the caller re-checks the files it cares about."""
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self):
        os.close(self.fd)


def inotify():
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
    def add_watch(fd, path, mask):
        try:
            return mod.inotify_add_watch(fd, path, mask)
        except OSError:
            return -1

    return add_watch
