"""A pseudo-terminal for the delegate when shim's own output is a terminal and capture is on.

Capture (masking, tee files, sinks) needs the delegate's output to pass through shim;
a pipe would make `isatty(1)` false, `stty size` say `0 0` and programs switch to block
buffering and drop colours.  So, like `script`, `docker run -t` and `kubectl run -t`,
the delegate runs on a pty instead:

* the slave gets the terminal's mode (termios) and window size; the delegate leads a new
  session with the slave as its controlling terminal (shim/proc/spawn.py `ctty`), so the
  kernel sends it SIGWINCH on a resize and its foreground group gets Ctrl-C;
* when shim's stdin is that terminal too and shim is in its foreground, stdin is relayed
  to the pty and shim's terminal is put in raw mode (restored at the end, also on an
  error exit): keys reach the delegate's line discipline, so Ctrl-C, Ctrl-Z and Ctrl-D mean
  what they mean on a terminal, once;
* SIGWINCH that shim receives copies its terminal's size to the pty (the kernel then
  signals the delegate's foreground group), instead of being forwarded.

Each stream on a terminal gets its own pty, so stdout and stderr stay apart (records,
tee files); only stdout's (or stdin's) is the controlling terminal.
"""

import atexit
import fcntl
import os
import struct
import termios

WINSIZE = struct.Struct("HHHH")


def wanted(fds: "list[int]", stdio: "list[int]") -> "list[int]":
    """The stdio slots (1, 2) that are shim's own terminal and would be captured."""
    return [fd for fd in fds if stdio[fd] < 0 and _isatty(fd)]


class Terminal:
    """One pty: `master` is read by capture; `slave` goes to the delegate's stdio slots."""

    def __init__(self, like):
        self.like = like  # shim's terminal descriptor the pty mirrors (size, mode)
        self.master: int | None
        self.slave: int | None
        self.master, self.slave = os.openpty()
        for fd in (self.master, self.slave):
            os.set_inheritable(fd, False)
        try:
            termios.tcsetattr(self.slave, termios.TCSANOW, termios.tcgetattr(like))
        except termios.error:
            pass  # a terminal without a readable mode: the pty's default one
        self.resize()
        self.saved = None  # shim's stdin terminal mode while it is raw
        self.stdin = False

    def resize(self) -> None:
        """Copy shim's terminal size to the pty (the kernel signals its foreground group)."""
        if self.master is None:  # a SIGWINCH after close(): no pty left to size
            return
        try:
            size = fcntl.ioctl(self.like, termios.TIOCGWINSZ, WINSIZE.pack(0, 0, 0, 0))
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    def give_to(self, uid: int) -> None:
        """Make the slave the delegate's user's (`--user`): programs that reopen their
        terminal (/dev/tty, `tty`, ssh-askpass) need to, as under login or docker."""
        if self.slave is None:
            return
        try:
            os.fchown(self.slave, uid, -1)
        except OSError:
            pass  # not root: the user is shim's own already

    def take_stdin(self) -> bool:
        """Relay shim's stdin when it is a terminal of which shim has the foreground.

        Returns True when the delegate's stdin should be the slave (raw mode is on)."""
        if not _isatty(0):
            return False
        try:
            if os.tcgetpgrp(0) != os.getpgrp():
                return False  # shim runs in the background: leave the terminal alone
            self.saved = termios.tcgetattr(0)
            termios.tcsetattr(0, termios.TCSADRAIN, _raw(self.saved))
        except (OSError, termios.error):
            self.saved = None
            return False
        atexit.register(self.restore)  # an error exit must not leave the terminal raw
        self.stdin = True
        return True

    def restore(self) -> None:
        if self.saved is not None:
            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except (OSError, termios.error):
                pass
            self.saved = None

    def release_slave(self) -> None:
        """After the spawn: only the delegate holds the slave, so its exit is EOF (EIO)."""
        if self.slave is not None:
            os.close(self.slave)
            self.slave = None

    def close(self) -> None:
        self.restore()
        self.release_slave()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def _raw(mode):
    """cfmakeraw(3) of a termios list: bytes pass as they are, no echo, no signals."""
    new: list = [list(x) if isinstance(x, list) else x for x in mode]
    new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP |
                termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    new[1] &= ~termios.OPOST
    new[2] &= ~(termios.CSIZE | termios.PARENB)
    new[2] |= termios.CS8
    new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    return new


def _isatty(fd):
    try:
        return os.isatty(fd)
    except OSError:
        return False
