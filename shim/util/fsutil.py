"""Files other processes read are written atomically: temp file, fsync, rename.

The one implementation for the runtime (result records, post files), `shim
install` (binaries, with a lock its sweeper respects) and the build scripts
(dist/ files, the tools-image archive).  Readers see the old file or the whole
new one, never a part.
"""

import os

from shim.errors import REASON_SETUP, ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable


def write_atomically(path: str, fill: "Callable[[int], object]", mode: int = 0o644, tmp: "str | None" = None,
                     lock: bool = False) -> None:
    """Create a temp file beside `path`, `fill(fd)` it, set `mode`, fsync, rename.

    `tmp`: the temp file's path (default `.NAME.tmp-PID-RANDOM` in the same directory);
    `lock`: hold an exclusive flock while writing (install's sweeper skips locked temps).
    Raises OSError; the temp file is removed on any failure.  The directory is not
    fsynced: call `fsync_dir` once after a batch.
    """
    directory = os.path.dirname(path) or "."
    if tmp is None:
        tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-"
                                      f"{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        if lock:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        fill(fd)
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: str, data: bytes, mode: int = 0o644, what: str = "file") -> None:
    """Write `data` (bytes) to `path` atomically; a failure is a setup error (exit 118)."""
    try:
        write_atomically(path, lambda fd: write_all(fd, data), mode)
    except OSError as err:
        raise ShimError("write", f"{what} {path}", (err.strerror or str(err)).lower(),
                        "check that the directory exists and is writable",
                        reason=REASON_SETUP) from None
    fsync_dir(os.path.dirname(path) or ".", strict=False)


def fsync_dir(directory: str, strict: bool = True) -> None:
    """Make a rename in `directory` durable.  strict=False: best effort, never raises."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)
