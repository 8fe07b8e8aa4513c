"""Files other processes read are written atomically: temp file, fsync, rename."""

import os

from shim.errors import REASON_SETUP, ShimError


def atomic_write(path, data, mode=0o644, what="file"):
    """Write `data` (bytes) to `path` so readers see the old file or the whole new one."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ShimError("write", f"{what} {path}", (err.strerror or str(err)).lower(),
                        "check that the directory exists and is writable",
                        reason=REASON_SETUP) from None
    _fsync_dir(directory)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
