"""stdout and stderr as file descriptors, for output that must never crash shim.

`shim version >/dev/full`, `shim check >&-` or `shim --bogus 2>&-` must end with
a one-line error or a documented code, never an internal error: CPython sets
`sys.stdout` to None when fd 1 is closed and reports a failed flush at exit with
its own exit code 120.  So shim writes its own output with os.write on fds 1 and
2, and turns a failure into a ShimError (EPIPE stays BrokenPipeError: the CLI
edge ends quietly with 141, as SIGPIPE would).
"""

import errno
import os

from shim.errors import REASON_SETUP, ShimError


def reserve_closed_fds() -> None:
    """Occupy closed fds 0-2 with a read-only fd of `/`.

    A file a subcommand opens later (the temp file of an install) can then never
    become "stdout" by accident, and a write to a closed stdout fails with EBADF.
    `/` rather than /dev/null: scratch images may have no /dev.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                got = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return
            if got != fd:  # a lower fd was free after all; keep only what we asked for
                os.close(got)


def write_stdout(data: "str | bytes") -> None:
    """Write all of `data` (str or bytes) to fd 1; raises ShimError (or BrokenPipeError)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(1, view):]
    except BrokenPipeError:
        raise
    except OSError as err:
        cause = os.strerror(err.errno).lower() if err.errno else str(err)
        if err.errno == errno.EBADF:
            cause += " (stdout is closed)"
        raise ShimError("write", "stdout", cause, "give shim a writable stdout (a file, a pipe "
                        "or a terminal that has space)", reason=REASON_SETUP) from None


def write_stderr(line: str) -> None:
    """Best effort: a message that cannot be shown must not change the outcome."""
    data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    try:
        while data:
            data = data[os.write(2, data):]
    except OSError:
        pass


class Stdout:
    """A stand-in for sys.stdout whose writes go through `write_stdout`."""

    def write(self, text: str) -> int:
        write_stdout(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def buffer(self) -> "Stdout":
        return self

    def isatty(self) -> bool:
        return os.isatty(1)

    def fileno(self) -> int:
        return 1
