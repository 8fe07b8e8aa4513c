"""Capture of the delegate's stdout/stderr: pipes pumped on the loop, only when needed.

Without a sink, a tee file or a mask value the delegate keeps shim's own
descriptors (a TTY stays a TTY) and nothing here runs.  With them, each captured
stream is a pipe whose read end is a loop reader; every chunk goes, in order:
mask (with its carry) -> console (byte-exact, blocking: a slow console slows the
delegate exactly as a direct pipe would) -> tee file -> records -> every sink's
bounded buffer (never holding the loop more than BLOCK_LIMIT).
After the delegate ends, `stop` drains the pipes and flushes every sink within
`--flush-timeout`.
"""

import errno
import fcntl
import os
import select

from shim.errors import REASON_SETUP, ShimError
from shim.service import Service
from shim.util.text import oserror

STREAMS = ((1, "stdout"), (2, "stderr"))
READ_SIZE = 64 << 10  # per read; also bounds the records made from one chunk
PIPE_SIZE = 1 << 20  # fewer wake-ups per megabyte; the kernel caps it at pipe-max-size
PARTIAL_FLUSH = 1.0  # an unfinished line (a prompt, a progress bar) reaches sinks after this


class _Stream:
    __slots__ = (
        "bytes",
        "console",
        "console_ok",
        "eof",
        "fd",
        "mask",
        "mask_timer",
        "name",
        "own_console",
        "last_data",
        "partial_timer",
        "read_fd",
        "tee",
        "write_fd",
    )

    def __init__(self, fd, name):
        self.fd, self.name = fd, name
        self.read_fd = self.write_fd = self.tee = self.mask = None
        self.mask_timer = self.partial_timer = None
        self.console, self.own_console = fd, False
        self.eof, self.bytes, self.console_ok = False, 0, True
        self.last_data = 0.0


class Capture(Service):
    """A run service (see shim.run.pipeline.Run): owns the pipes, masks, records, sinks."""

    def __init__(self, which, masker=None, recorder=None, sinks=(), tees=None,
                 flush_timeout=5.0, mask_delay=0.05, log=None):
        self.streams = [_Stream(fd, name) for fd, name in STREAMS if fd in which]
        self.masker = masker if masker else None
        self.recorder = recorder
        self.sinks = list(sinks)
        self.tees = tees or {}
        self.flush_timeout = flush_timeout
        self.mask_delay = mask_delay
        self.log = log or (lambda level, message: None)
        self.loop = None
        # Checked now, while nothing of shim's own (epoll, signalfd) can sit on 1 or 2.
        self.closed = {fd for fd, _ in STREAMS if not _is_open(fd)}

    # -- run hooks --------------------------------------------------------------------------
    def start(self, run):
        self.loop = run.resident.loop
        stdio = list(run.stdio)
        for st in self.streams:
            if st.name in self.tees:
                st.tee = _open_tee(self.tees[st.name])
            if self.masker is not None:
                st.mask = self.masker.stream()
            if stdio[st.fd] >= 0:  # already redirected (a stdio relay): that is the console now
                st.console, st.own_console = os.dup(stdio[st.fd]), True
            elif st.fd in self.closed:  # shim was started with it closed: no console to copy to
                st.console_ok = False
            st.read_fd, st.write_fd = (_above_stdio(fd) for fd in os.pipe2(os.O_CLOEXEC))
            try:
                fcntl.fcntl(st.read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # above the system's pipe-max-size: the default size works too
            os.set_blocking(st.read_fd, False)
            stdio[st.fd] = st.write_fd
            self.loop.add_reader(st.read_fd, lambda st=st: self._readable(st))
        run.stdio = tuple(stdio)
        for sink in self.sinks:
            sink.start()

    def delegate_started(self, pid, supervisor):
        for st in self.streams:  # the delegate holds the write ends now; EOF comes when it is done
            if st.write_fd is not None:
                os.close(st.write_fd)
                st.write_fd = None

    def stop(self, run):
        """Drain the pipes, then flush every sink, all within --flush-timeout."""
        self.delegate_started(None, None)  # idempotent: the write ends are closed either way
        deadline = self.loop.time() + self.flush_timeout
        self.loop.run_until(lambda: all(st.eof for st in self.streams), deadline)
        for st in self.streams:
            if not st.eof:  # a descendant still holds the pipe: take what is there and stop
                self._readable(st, until_empty=True)
                self._end(st)
        for sink in self.sinks:
            sink.close(deadline)
        run.counters["logs"] = self.counters()
        dropped = {sink.name: sink.dropped for sink in self.sinks if sink.dropped}
        if dropped:
            self.log("warn", "log sinks dropped records: " + ", ".join(
                f"{name} {n}" for name, n in dropped.items()) + "; see the result record's "
                "counters (raise --log-buffer or fix the sink)")

    def counters(self):
        out = {st.name: {"bytes": st.bytes} for st in self.streams}
        if self.recorder is not None:
            out["records"] = self.recorder.lines
        out["sinks"] = {sink.name: sink.counters() for sink in self.sinks}
        return out

    # -- the pump ----------------------------------------------------------------------------
    def _readable(self, st, until_empty=False):
        while not st.eof:
            try:
                data = os.read(st.read_fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                if not until_empty:
                    self._end(st)
                return
            st.bytes += len(data)
            if st.mask is not None:
                data = st.mask.feed(data)
                if st.mask.carry and st.mask_timer is None:
                    st.mask_timer = self.loop.call_later(self.mask_delay,
                                                         lambda st=st: self._flush_mask(st))
            self._emit(st, data)
            if not until_empty:
                return  # let other sources run; epoll is level-triggered and comes back

    def _flush_mask(self, st):
        st.mask_timer = None
        self._emit(st, st.mask.flush())

    def _flush_partial(self, st):
        """An unfinished line goes out once its stream has been quiet for PARTIAL_FLUSH (a
        prompt, a progress bar); while output flows, lines are only cut at --max-line."""
        quiet = self.loop.time() - st.last_data
        if quiet < PARTIAL_FLUSH:
            st.partial_timer = self.loop.call_later(PARTIAL_FLUSH - quiet,
                                                    lambda st=st: self._flush_partial(st))
            return
        st.partial_timer = None
        self._to_sinks(self.recorder.flush(st.name))

    def _emit(self, st, data):
        if not data:
            return
        if st.console_ok:
            error = _write_all(st.console, data, f"console {st.name}", self.log)
            st.console_ok = error is None
            if error == errno.EPIPE and not st.eof:
                # The reader went away: close our end too, so the delegate's next write
                # fails (EPIPE/SIGPIPE) exactly as it would have without capture.
                self._end(st)
        if st.tee is not None and _write_all(st.tee, data, f"tee file of {st.name}", self.log):
            os.close(st.tee)
            st.tee = None
        if self.sinks:
            self._to_sinks(self.recorder.feed(st.name, data))
            st.last_data = self.loop.time()
            if self.recorder.pending(st.name) and st.partial_timer is None:
                st.partial_timer = self.loop.call_later(PARTIAL_FLUSH,
                                                        lambda st=st: self._flush_partial(st))

    def _to_sinks(self, records):
        if records:
            size = sum(map(len, records))
            for sink in self.sinks:
                sink.put(records, size)

    def _shared_and_open(self, st):
        return any(other is not st and other.own_console and not other.eof and
                   _same_file(other.console, st.console) for other in self.streams)

    def _end(self, st):
        st.eof = True
        self.loop.remove_reader(st.read_fd)
        os.close(st.read_fd)
        for timer in (st.mask_timer, st.partial_timer):
            if timer is not None:
                timer.cancel()
        st.mask_timer = st.partial_timer = None
        if st.mask is not None:
            self._emit(st, st.mask.flush())
        if self.sinks:
            self._to_sinks(self.recorder.flush(st.name))
        if st.tee is not None:
            os.close(st.tee)
            st.tee = None
        if st.own_console:  # a relay socket: propagate the half-close, then let go
            try:
                if not self._shared_and_open(st):  # stdout and stderr to one ADDR: the last one
                    _shutdown_write(st.console)
            finally:
                os.close(st.console)
                st.own_console, st.console_ok = False, False


def _is_open(fd):
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
        return True
    except OSError:
        return False


def _above_stdio(fd):
    """Move a new descriptor off 0-2 (free when shim started with one closed): a pipe end
    there would be taken for the console."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def _same_file(a, b):
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _open_tee(path):
    """Like Tekton's entrypoint: the parent directories are made, the file is appended to."""
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise ShimError("open", f"tee file {path}", oserror(err),
                        "check the directory exists and is writable", reason=REASON_SETUP) from None


def _write_all(fd, data, what, log):
    """Write all of `data` to `fd`, waiting if it is non-blocking; the errno once it is unusable."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        except OSError as err:
            if err.errno != errno.EPIPE:  # a closed console reader is normal at shutdown
                log("warn", f"write {what}: {oserror(err)}; "
                            "no more output goes there")
            return err.errno or errno.EIO
        view = view[n:]
    return None


def _shutdown_write(fd):
    import socket  # only with a relay socket as the console

    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.detach()
