"""Capture of the delegate's stdout/stderr: pipes pumped on the loop, only when needed.

Without a sink, a tee file or a mask value the delegate keeps shim's own
descriptors (a TTY stays a TTY) and nothing here runs.  With them, each captured
stream is a pipe whose read end is a loop reader; every chunk goes, in order:
mask (with its carry) -> console (byte-exact) -> tee file -> records -> every
sink's bounded buffer.

Nothing here blocks the loop (signals, reaping and timers keep running):
* The console and the tee files are written without blocking (a socket with
  MSG_DONTWAIT; a pipe, FIFO or terminal through a non-blocking descriptor of its
  own, so the shared one is left as it is).  What a slow reader cannot take yet
  stays pending and its stream stops being read until it drains: the delegate
  waits in write() exactly as it would on that reader directly.
* A tee path that is a FIFO is opened when a reader appears (like `cmd > fifo`),
  waiting on the loop, so a stop signal ends the wait (exit 128+n, not started).
* A full sink that is healthy holds both streams the same way, for at most
  `--log-block-limit` per congestion episode; see shim.streams.sinks.base.
When shim's stdout/stderr is a terminal, the delegate gets a pseudo-terminal instead of
pipes (shim.streams.terminal): what it sees stays a terminal, and its output still passes
through here.
After the delegate ends, `stop` drains the pipes and flushes every output and sink
within `--flush-timeout`.
"""

import errno
import fcntl
import os
import stat

from shim.errors import REASON_SETUP, ShimError
from shim.service import Service
from shim.util.text import oserror

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.loop import Loop
    from shim.proc.supervise import Supervisor
    from shim.service import Handoff, Start

STREAMS = ((1, "stdout"), (2, "stderr"))
READ_SIZE = 64 << 10  # per read; also bounds the records made from one chunk
PIPE_SIZE = 1 << 20  # fewer wake-ups per megabyte; the kernel caps it at pipe-max-size
PARTIAL_FLUSH = 1.0  # an unfinished line (a prompt, a progress bar) reaches sinks after this
FIFO_RETRY = 0.05  # how often a FIFO tee path is tried again for a reader
FIFO_NOTICE = 1.0  # after this long, say that shim waits for a FIFO's reader


class _Out:
    """A console or tee file written without blocking the loop; the rest stays `pending`."""

    __slots__ = ("fd", "what", "pending", "sock", "owned", "blocking", "on_drained", "loop")

    def __init__(self, fd, what, owned, loop, on_drained):
        self.what, self.loop, self.on_drained = what, loop, on_drained
        self.pending = bytearray()
        self.sock = None
        self.owned = owned  # our own descriptor: closed with us
        self.blocking = False
        mode = os.fstat(fd).st_mode
        if stat.S_ISSOCK(mode):
            import socket

            self.fd = os.dup(fd) if not owned else fd
            self.owned = True
            self.sock = socket.socket(fileno=self.fd)
        elif owned or stat.S_ISREG(mode) or stat.S_ISBLK(mode):
            self.fd = fd  # ours (opened non-blocking), or a disk file: write() does not wait
        else:
            # A pipe, FIFO or terminal shared with others: O_NONBLOCK on it would change
            # their file description too, so open one of our own through /proc.
            try:
                self.fd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK |
                                  os.O_CLOEXEC | os.O_NOCTTY)
                self.owned = True
            except OSError:  # no /proc, or not ours to reopen: blocking writes (bounded by the reader)
                self.fd, self.blocking = fd, True

    def write(self, data: bytes) -> "int | None":
        """Write or queue `data`; returns the errno once the output is unusable, else None."""
        if self.pending:
            self.pending += data
            return None
        return self._send(memoryview(data))

    def _send(self, view):
        import select

        while view:
            try:
                if self.sock is not None:
                    import socket

                    n = self.sock.send(view, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
                else:
                    n = os.write(self.fd, view)
            except BlockingIOError:
                if self.blocking:  # a descriptor shim could not make its own: wait here
                    select.select([], [self.fd], [])
                    continue
                self.pending += view
                self.loop.add_writer(self.fd, self._writable)
                return None
            except InterruptedError:
                continue
            except OSError as err:
                return err.errno or errno.EIO
            view = view[n:]
        return None

    def _writable(self) -> None:
        data, self.pending = bytes(self.pending), bytearray()
        self.loop.remove_writer(self.fd)
        error = self._send(memoryview(data))
        if error is not None or not self.pending:
            self.on_drained(self, error)

    def drop_pending(self) -> int:
        n = len(self.pending)
        self.pending = bytearray()
        self.loop.remove_writer(self.fd)
        return n

    def close(self) -> None:
        self.loop.remove_writer(self.fd)
        if self.sock is not None:
            self.sock.close()
        elif self.owned:
            os.close(self.fd)
        self.sock, self.owned = None, False


class _Stream:
    __slots__ = (
        "bytes",
        "console",
        "closed_done",
        "eof",
        "fd",
        "mask",
        "mask_timer",
        "name",
        "own_console",
        "last_data",
        "partial_timer",
        "read_fd",
        "reading",
        "tee",
        "write_fd",
    )

    def __init__(self, fd, name):
        self.fd, self.name = fd, name
        self.read_fd = self.write_fd = self.tee = self.mask = self.console = None
        self.mask_timer = self.partial_timer = None
        self.own_console = False
        self.eof = self.reading = self.closed_done = False
        self.bytes = 0
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
        self.loop: "Loop" = None  # type: ignore[assignment]  # set by start()
        self.held_since = None  # when sinks started holding the output (for held_ms)
        self.hold_timer = None
        self.lost = {}  # output name -> bytes it could not take by the flush deadline
        self.tty = None  # the delegate's controlling pseudo-terminal (shim's output is one)
        self.ttys = []  # every pty given to the delegate (one per stream on a terminal)
        self.tty_input = None  # _Out writing shim's stdin to the pty (raw terminal relay)
        # Checked now, while nothing of shim's own (epoll, signalfd) can sit on 1 or 2.
        self.closed = {fd for fd, _ in STREAMS if not _is_open(fd)}

    # -- run hooks --------------------------------------------------------------------------
    def start(self, ctx: "Start") -> "Handoff":
        from shim.service import Handoff

        self.loop = ctx.resident.loop
        tees = self._open_tees(ctx)
        stdio = list(ctx.stdio)
        ctty = self._use_terminal(ctx, stdio)
        for st in self.streams:
            if st.name in tees:
                st.tee = _Out(tees[st.name], f"tee file of {st.name}", True, self.loop,
                              lambda out, error, st=st: self._drained(st, out, error))
            if self.masker is not None:
                st.mask = self.masker.stream()
            given = ctx.stdio[st.fd]  # as the run had it, before pipes or the pty
            console = given if given >= 0 else st.fd
            if given >= 0:  # already redirected (a stdio relay): that is the console now
                st.own_console = True
            if given >= 0 or st.fd not in self.closed:  # else: no console to copy to
                st.console = _Out(console, f"console {st.name}", False, self.loop,
                                  lambda out, error, st=st: self._drained(st, out, error))
            if st.read_fd is None:  # a pipe (the pty's stream already reads its master)
                st.read_fd, st.write_fd = (_above_stdio(fd) for fd in os.pipe2(os.O_CLOEXEC))
                try:
                    fcntl.fcntl(st.read_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass  # above the system's pipe-max-size: the default size works too
                stdio[st.fd] = st.write_fd
            os.set_blocking(st.read_fd, False)
            self._resume(st)
        handoff = Handoff(stdio=tuple(stdio), ctty=ctty)
        if self.sinks:
            self.loop.enable_threads()
        for sink in self.sinks:
            sink.on_change = lambda: self.loop.call_soon_threadsafe(self._check_hold)
            sink.start()
        return handoff

    def _use_terminal(self, ctx, stdio) -> "int | None":
        """Shim's stdout/stderr is a terminal: give the delegate a pty for each (stdout's is
        its session's controlling terminal; stdin is relayed to it when stdin is the same
        terminal in the foreground).  One pty per stream keeps stdout and stderr apart."""
        from shim.streams import terminal

        fds = terminal.wanted([st.fd for st in self.streams], stdio)
        if not fds:
            return None
        self.ttys = []
        for st in self.streams:
            if st.fd in fds:
                tty = terminal.Terminal(like=st.fd)
                self.ttys.append(tty)
                st.read_fd = fcntl.fcntl(tty.master, fcntl.F_DUPFD_CLOEXEC, 3)  # type: ignore[arg-type]  # ours to close
                stdio[st.fd] = tty.slave
        identity = ctx.identity
        if identity is not None and identity.uid is not None:
            for tty in self.ttys:  # as login and docker do: the user's own terminal
                tty.give_to(identity.uid)
        self.tty = self.ttys[0]
        ctty = fds[0]
        if stdio[0] < 0 and self.tty.take_stdin():
            stdio[0] = self.tty.slave
            ctty = 0
            self.tty_input = _Out(os.dup(self.tty.master), "terminal input", True, self.loop,
                                  lambda out, error: self._stdin_drained(error))
            self.loop.add_reader(0, self._stdin_readable)
        return ctty

    def _stdin_readable(self) -> None:
        try:
            data = os.read(0, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or self.tty_input is None:
            self.loop.remove_reader(0)  # shim's terminal hung up: nothing more to relay
            return
        error = self.tty_input.write(data)
        if error is not None:
            self._stdin_drained(error)
        elif self.tty_input.pending:
            self.loop.remove_reader(0)  # the delegate reads slower than the keys come

    def _stdin_drained(self, error) -> None:
        if error is not None:  # the pty is gone (the delegate ended)
            self.loop.remove_reader(0)
            self.tty_input.close()  # type: ignore[union-attr]  # set while stdin is forwarded
            self.tty_input = None
            return
        self.loop.add_reader(0, self._stdin_readable)

    def _open_tees(self, ctx):
        """{stream: fd} of the tee files.  A FIFO without a reader is waited for on the loop."""
        fds, waiting = {}, {}
        for name, path in self.tees.items():
            fd = _open_tee(path)
            if fd is None:
                waiting[name] = path
            else:
                fds[name] = fd
        if waiting:
            started = self.loop.time()
            said: list = []

            def retry() -> None:
                for name, path in list(waiting.items()):
                    fd = _open_tee(path)
                    if fd is not None:
                        fds[name] = fd
                        del waiting[name]
                if waiting and not said and self.loop.time() - started >= FIFO_NOTICE:
                    said.append(True)
                    self.log("info", "open tee file " + ", ".join(waiting.values()) +
                             ": a FIFO with no reader yet; waiting for one before the delegate "
                             "starts (a stop signal ends the wait)")
                if waiting:
                    timers.append(self.loop.call_later(FIFO_RETRY, retry))

            timers = [self.loop.call_later(FIFO_RETRY, retry)]
            try:
                ctx.resident.wait_until(lambda: not waiting)
            finally:
                for timer in timers:
                    timer.cancel()
            if waiting:
                for fd in fds.values():
                    os.close(fd)
                ctx.check_interrupted()  # the only way out of the wait: a stop signal
        return fds

    def delegate_started(self, pid: "int | None", supervisor: "Supervisor | None") -> None:
        for st in self.streams:  # the delegate holds the write ends now; EOF comes when it is done
            if st.write_fd is not None:
                os.close(st.write_fd)
                st.write_fd = None
        for tty in self.ttys:
            tty.release_slave()
        if self.ttys and supervisor is not None:
            _resize_on_winch(supervisor, self.ttys)

    def stop(self) -> dict:
        """Drain the pipes, then flush every output and sink, all within --flush-timeout."""
        self.delegate_started(None, None)  # idempotent: the write ends are closed either way
        deadline = self.loop.time() + self.flush_timeout
        self.loop.run_until(lambda: all(st.closed_done for st in self.streams), deadline)
        for st in self.streams:
            if not st.eof:  # a descendant still holds the pipe: take what is there and stop
                self._readable(st, until_empty=True)
                self._end(st)
            for out in (st.console, st.tee):
                if out is not None and out.pending:
                    self.lost[out.what] = self.lost.get(out.what, 0) + out.drop_pending()
            self._close_outputs(st)
        if self.hold_timer is not None:
            self.hold_timer.cancel()
        self._account_held()
        if self.tty_input is not None:
            self.loop.remove_reader(0)
            self.tty_input.close()
            self.tty_input = None
        for tty in self.ttys:  # shim's terminal back to its own mode
            tty.close()
        for sink in self.sinks:
            sink.close(deadline)
        counters = {"logs": self.counters()}
        if self.lost:
            self.log("warn", "output not written within --flush-timeout: " + ", ".join(
                f"{what} {n} bytes" for what, n in self.lost.items()))
        dropped = {sink.name: sink.dropped for sink in self.sinks if sink.dropped}
        if dropped:
            self.log("warn", "log sinks dropped records: " + ", ".join(
                f"{name} {n}" for name, n in dropped.items()) + "; see the result record's "
                "counters (raise --log-buffer or --log-block-limit, or fix the sink)")
        return counters

    def counters(self) -> "dict[str, Any]":
        out = {st.name: {"bytes": st.bytes} for st in self.streams}
        if self.recorder is not None:
            out["records"] = self.recorder.lines
        out["sinks"] = {sink.name: sink.counters() for sink in self.sinks}
        return out

    # -- holding the delegate's output (back-pressure) -----------------------------------------
    def _wanted(self, st) -> bool:
        """Whether `st`'s pipe should be read now."""
        if st.eof:
            return False
        if any(out is not None and out.pending for out in (st.console, st.tee)):
            return False  # its console or tee is full: wait for it as a direct writer would
        return self.held_since is None

    def _resume(self, st) -> None:
        want = self._wanted(st)
        if want and not st.reading:
            self.loop.add_reader(st.read_fd, lambda st=st: self._readable(st))
        elif st.reading and not want:
            self.loop.remove_reader(st.read_fd)
        st.reading = want

    def _check_hold(self) -> None:
        """Hold every stream while a healthy sink is full; degrade one held too long."""
        if self.loop is None:
            return
        now = self.loop.time()
        holding = [sink for sink in self.sinks if sink.holding()]
        for sink in holding:
            if sink.full_since is not None and now - sink.full_since >= sink.block_limit:
                sink.degrade()
        holding = [sink for sink in holding if sink.holding()]
        if holding and self.held_since is None:
            self.held_since = (now, holding)
        elif not holding and self.held_since is not None:
            self._account_held()
        if self.hold_timer is not None:
            self.hold_timer.cancel()
            self.hold_timer = None
        if holding:  # wake up when the first of them has held for its limit
            when = min((s.full_since or now) + s.block_limit for s in holding)
            self.hold_timer = self.loop.call_at(when, self._check_hold)
        for st in self.streams:
            self._resume(st)

    def _account_held(self) -> None:
        if self.held_since is not None:
            since, sinks = self.held_since
            for sink in sinks:
                sink.held_s += self.loop.time() - since
            self.held_since = None

    def _drained(self, st, out, error) -> None:
        """A console or tee took its pending bytes (or failed)."""
        if error is not None:
            self._failed(st, out, error)
        if st.eof:
            self._close_outputs(st)
        else:
            self._resume(st)

    # -- the pump ----------------------------------------------------------------------------
    def _readable(self, st, until_empty=False) -> None:
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
                # Each feed takes the old carry in and leaves a new one: its own full delay
                # (an older timer would flush a carry that has only just begun).
                if st.mask_timer is not None:
                    st.mask_timer.cancel()
                    st.mask_timer = None
                if st.mask.carry:
                    st.mask_timer = self.loop.call_later(self.mask_delay,
                                                         lambda st=st: self._flush_mask(st))
            self._emit(st, data)
            if not until_empty:
                return  # let other sources run; epoll is level-triggered and comes back

    def _flush_mask(self, st) -> None:
        st.mask_timer = None
        self._emit(st, st.mask.flush())

    def _flush_partial(self, st) -> None:
        """An unfinished line goes out once its stream has been quiet for PARTIAL_FLUSH (a
        prompt, a progress bar); while output flows, lines are only cut at --max-line."""
        quiet = self.loop.time() - st.last_data
        if quiet < PARTIAL_FLUSH:
            st.partial_timer = self.loop.call_later(PARTIAL_FLUSH - quiet,
                                                    lambda st=st: self._flush_partial(st))
            return
        st.partial_timer = None
        self._to_sinks(self.recorder.flush(st.name))

    def _emit(self, st, data) -> None:
        if not data:
            return
        for out in (st.console, st.tee):
            if out is not None:
                error = out.write(data)
                if error is not None:
                    self._failed(st, out, error)
        if self.sinks:
            self._to_sinks(self.recorder.feed(st.name, data))
            st.last_data = self.loop.time()
            if self.recorder.pending(st.name) and st.partial_timer is None:
                st.partial_timer = self.loop.call_later(PARTIAL_FLUSH,
                                                        lambda st=st: self._flush_partial(st))
        self._resume(st)

    def _failed(self, st, out, error) -> None:
        """An output is unusable: no more output goes there."""
        if out is st.console:
            if error != errno.EPIPE:  # a closed console reader is normal at shutdown
                self.log("warn", f"write {out.what}: {oserror(OSError(error, os.strerror(error)))}; "
                                 "no more output goes there")
            st.console = None
            out.close()
            if error == errno.EPIPE and not st.eof:
                # The reader went away: close our end too, so the delegate's next write
                # fails (EPIPE/SIGPIPE) exactly as it would have without capture.
                self._end(st)
        else:
            self.log("warn", f"write {out.what}: {oserror(OSError(error, os.strerror(error)))}; "
                             "no more output goes there")
            st.tee = None
            out.close()

    def _to_sinks(self, records) -> None:
        if records:
            size = sum(map(len, records))
            for sink in self.sinks:
                sink.put(records, size)
            if any(sink.holding() for sink in self.sinks) or self.held_since is not None:
                self._check_hold()

    def _shared_and_open(self, st):
        return any(other is not st and other.own_console and not other.closed_done and
                   other.console is not None and st.console is not None and
                   _same_file(other.console.fd, st.console.fd) for other in self.streams)

    def _end(self, st) -> None:
        st.eof = True
        if st.reading:
            self.loop.remove_reader(st.read_fd)
            st.reading = False
        os.close(st.read_fd)
        for timer in (st.mask_timer, st.partial_timer):
            if timer is not None:
                timer.cancel()
        st.mask_timer = st.partial_timer = None
        if st.mask is not None:
            self._emit(st, st.mask.flush())
        if self.sinks:
            self._to_sinks(self.recorder.flush(st.name))
        self._close_outputs(st)

    def _close_outputs(self, st) -> None:
        """After EOF, once the console and tee took everything: let go of them."""
        if st.closed_done or any(out is not None and out.pending for out in (st.console, st.tee)):
            return
        st.closed_done = True
        if st.tee is not None:
            st.tee.close()
            st.tee = None
        if st.console is not None:
            if st.own_console:  # a relay socket: propagate the half-close, then let go
                if not self._shared_and_open(st):  # stdout and stderr to one ADDR: the last one
                    _shutdown_write(st.console)
            st.console.close()
            st.console = None


def _resize_on_winch(supervisor, ttys) -> None:
    """SIGWINCH to shim resizes the ptys instead of being forwarded: the kernel then sends
    SIGWINCH to the controlling pty's foreground group, after the new size is there to read."""
    import signal

    forward = supervisor.on_signal

    def on_signal(signo: int) -> None:
        if signo == signal.SIGWINCH:
            for tty in reversed(ttys):  # the controlling one (which signals) last
                tty.resize()
        else:
            forward(signo)

    supervisor.on_signal = on_signal


def _is_open(fd) -> bool:
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
    """Like Tekton's entrypoint: the parent directories are made, the file is appended to.

    Opened non-blocking (our own description): a FIFO without a reader is None (ENXIO),
    to be tried again, instead of an open() that waits forever and deaf to signals.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC |
                       os.O_NONBLOCK | os.O_NOCTTY, 0o666)
    except OSError as err:
        if err.errno == errno.ENXIO:
            return None
        raise ShimError("open", f"tee file {path}", oserror(err),
                        "check the directory exists and is writable", reason=REASON_SETUP) from None


def _shutdown_write(out) -> None:
    import socket  # only with a relay socket as the console

    if out.sock is None:
        return
    try:
        out.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
