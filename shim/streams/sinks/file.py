"""`file:///path?max_bytes=N&backups=K`: append JSON lines, rotate by size (path.1 ... path.K)."""

import errno
import os

from shim.streams.sinks.base import Sink


class FileSink(Sink):
    kind = "file"

    def __init__(self, url, path, max_bytes=0, backups=3, **common):
        super().__init__(url, **common)
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._fd = None
        self._written = 0  # bytes in the current file
        self._partial = 0  # bytes of batch[done] already in the file (a short write)

    def connect(self) -> None:
        # Non-blocking open: a FIFO without a reader is a sink that is down (retried with
        # backoff), not a writer thread stuck in open() that close() cannot wake.
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC |
                         os.O_NONBLOCK | os.O_NOCTTY, 0o644)
        except OSError as err:
            if err.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, "a FIFO with no reader yet") from None
            raise
        os.set_blocking(fd, True)  # our own description: writes wait on this thread only
        self._fd = fd
        self._written = os.fstat(self._fd).st_size

    def disconnect(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def interrupt(self) -> None:
        pass  # a file write cannot be interrupted from another thread; close() stops waiting

    def deliver(self, batch: "list[bytes]") -> None:
        while self.done < len(batch):
            if (self.max_bytes and not self._partial and self._written and
                    self._written + len(batch[self.done]) > self.max_bytes):
                self._rotate()  # the next record would not fit: a file never exceeds max_bytes
            room = (self.max_bytes - self._written) if self.max_bytes else 1 << 62
            end, total = self.done, 0
            while end < len(batch) and (end == self.done or total + len(batch[end]) <= room):
                total += len(batch[end])
                end += 1
            data = memoryview(b"".join(batch[self.done:end]))[self._partial:]
            offset = 0
            try:
                while offset < len(data):
                    offset += os.write(self._fd, data[offset:])  # type: ignore[arg-type]  # open here
            finally:
                self._written += offset
                self._advance(batch, end, offset)

    def _advance(self, batch, end, offset) -> None:
        """Move `done`/`_partial` past `offset` bytes written of batch[done:end]."""
        offset += self._partial
        while self.done < end and offset >= len(batch[self.done]):
            offset -= len(batch[self.done])
            self.done += 1
        self._partial = offset if self.done < end else 0

    def _rotate(self) -> None:
        self.disconnect()
        if self.backups == 0:
            os.truncate(self.path, 0)
        else:
            for i in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, self.path + ".1")
        self.connect()
