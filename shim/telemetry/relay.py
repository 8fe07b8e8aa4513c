"""The delegate's stdio over the network: Airbyte's socat sidecars, built in.

ADDR is `tcp://HOST:PORT`, `tcp-listen://[HOST]:PORT`, `unix:///PATH` or
`unix-listen:///PATH`.  The connected socket itself becomes the delegate's fd
0/1/2, so the bytes never pass through shim (binary-safe, no copy) and half-close
is the kernel's: EOF from the peer is EOF on the delegate's stdin, and when the
delegate (and whatever inherited the fd) closes its stdout the peer sees EOF.
When output is also captured (sinks, masking), capture writes to the socket and
shuts it down for writing at the end.  Connecting retries until `--relay-timeout`;
a peer that never comes is exit 115 (reason relay-failed), the delegate not started.
"""

import errno
import os
import socket

from shim.errors import REASON_RELAY_FAILED, ShimError, usage_error
from shim.service import Service
from shim.util.text import oserror as _cause, show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.loop import Loop
    from shim.proc.supervise import Supervisor
    from shim.service import Handoff, Start

FIX = "use tcp://HOST:PORT, tcp-listen://[HOST]:PORT, unix:///PATH or unix-listen:///PATH"
RETRY_FIRST, RETRY_MAX = 0.05, 1.0
FLAGS = {0: "--stdin-from", 1: "--stdout-to", 2: "--stderr-to"}


def parse_addr(text: str, flag: str) -> "tuple[str, str, Any]":
    """(kind, family, address) where kind is 'connect' or 'listen'; usage error if unreadable."""
    from shim.net.url import URLError, split
    try:
        parts, port = split(text)
    except URLError as err:
        raise usage_error(f"option {flag}", f"cannot read address: {err}", FIX) from None
    scheme = parts.scheme.lower()
    if scheme in ("tcp", "tcp-listen"):
        host = parts.hostname or ("" if scheme == "tcp-listen" else None)
        if host is None or port is None or parts.path not in ("", "/"):
            raise usage_error(f"option {flag}", f"{scheme}:// needs {'' if host == '' else 'a host and '}"
                              "a port", FIX)
        if port == 0:  # the kernel would pick a port no peer can know (or connect to)
            raise usage_error(f"option {flag}", f"{scheme}:// needs a port other than 0",
                              "give the fixed port the peer uses")
        return ("listen" if scheme == "tcp-listen" else "connect"), "tcp", (host, port)
    if scheme in ("unix", "unix-listen"):
        if not parts.path or parts.netloc:
            raise usage_error(f"option {flag}", f"{scheme}:// needs an absolute path", FIX)
        return ("listen" if scheme == "unix-listen" else "connect"), "unix", parts.path
    raise usage_error(f"option {flag}", f"unknown address scheme {show(scheme) if scheme else '(none)'}", FIX)


class _Endpoint:
    def __init__(self, text, kind, family, address):
        self.text, self.kind, self.family, self.address = text, kind, family, address
        self.sock = None  # the connected socket, once there is one
        self.listener = None
        self.error = None
        self.retry = RETRY_FIRST
        self.pending = None


class Relay(Service):
    """A run service: connect (or accept) each ADDR before the delegate starts; hand it the fds."""

    def __init__(self, addrs, timeout=30.0, log=None):
        self.timeout = timeout
        self.log = log or (lambda level, message: None)
        self.endpoints: dict = {}  # ADDR text -> _Endpoint (one connection when two fds name the same ADDR)
        self.fds = {}  # delegate fd -> ADDR text
        for fd, text in addrs.items():
            if text:
                if text not in self.endpoints:
                    self.endpoints[text] = _Endpoint(text, *parse_addr(text, FLAGS[fd]))
                self.fds[fd] = text
        self.loop: "Loop" = None  # type: ignore[assignment]  # set by start()
        self.closed = False

    def start(self, ctx: "Start") -> "Handoff":
        from shim.service import Handoff

        self.loop = ctx.resident.loop
        for ep in self.endpoints.values():
            (self._listen if ep.kind == "listen" else self._connect)(ep)
        deadline = self.loop.time() + self.timeout
        ctx.resident.wait_until(lambda: all(ep.sock or ep.error for ep in self.endpoints.values()),
                                deadline)
        ctx.check_interrupted()
        missing = [ep for ep in self.endpoints.values() if ep.sock is None]
        if missing:
            ep = missing[0]
            cause = ep.error or (f"no peer connected within {self.timeout:g}s" if
                                 ep.kind == "listen" else
                                 f"could not connect within {self.timeout:g}s")
            self._close_all()
            raise ShimError("relay", ep.text, cause, "start the peer first or raise "
                            "--relay-timeout", reason=REASON_RELAY_FAILED)
        stdio = list(ctx.stdio)
        for fd, text in self.fds.items():
            stdio[fd] = self.endpoints[text].sock.fileno()
        return Handoff(stdio=tuple(stdio))

    def delegate_started(self, pid: "int | None", supervisor: "Supervisor | None") -> None:
        self._close_all()  # the delegate holds them now: its close is the peer's EOF

    def stop(self) -> None:
        self._close_all()

    # -- establishing -------------------------------------------------------------------
    def _listen(self, ep) -> None:
        if ep.family == "unix":
            _remove_stale_socket(ep.address)
            sock = _bound(socket.AF_UNIX, ep.address, ep.text)
        else:
            host, port = ep.address
            sock = _bound(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port), ep.text)
        sock.setblocking(False)
        ep.listener = sock
        self.loop.add_reader(sock.fileno(), lambda: self._accept(ep))

    def _accept(self, ep) -> None:
        try:
            conn, _ = ep.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            ep.error = f"accept failed ({_cause(err)})"
            return
        conn.setblocking(True)
        ep.sock = conn
        self.loop.remove_reader(ep.listener.fileno())
        ep.listener.close()  # one peer per address, like socat without fork
        ep.listener = None

    def _connect(self, ep) -> None:
        if self.closed:  # a retry timer after the relay gave up or handed over
            return
        if ep.family == "unix":
            self._connect_to(ep, socket.AF_UNIX, ep.address)
            return
        # Name resolution can wait for a DNS server for seconds: on a worker thread, so
        # the loop (signals, other endpoints, the deadline) keeps running meanwhile.
        self.loop.run_in_thread(lambda: socket.getaddrinfo(*ep.address, type=socket.SOCK_STREAM),  # type: ignore[misc]
                                lambda infos, error: self._resolved(ep, infos, error))

    def _resolved(self, ep, infos, error) -> None:
        if ep.sock is not None or self.closed:  # connected meanwhile, or the relay is over
            return
        if error is not None or not infos:  # a name that does not resolve yet (a pod starting)
            self._retry(ep)
            return
        family, _, _, _, target = infos[0]
        self._connect_to(ep, family, target)

    def _connect_to(self, ep, family, target) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(target)
        if err == 0:
            self._connected(ep, sock)
        elif err in (errno.EINPROGRESS, errno.EAGAIN):  # EAGAIN: a unix listener's backlog is full
            ep.pending = sock
            self.loop.add_writer(sock.fileno(), lambda: self._connect_done(ep))
        else:
            sock.close()
            self._retry(ep)

    def _connect_done(self, ep) -> None:
        sock, ep.pending = ep.pending, None
        self.loop.remove_writer(sock.fileno())
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            self._connected(ep, sock)
        else:
            sock.close()
            self._retry(ep)

    def _connected(self, ep, sock) -> None:
        sock.setblocking(True)
        ep.sock = sock

    def _retry(self, ep) -> None:
        delay, ep.retry = ep.retry, min(ep.retry * 2, RETRY_MAX)
        self.loop.call_later(delay, lambda: None if ep.sock else self._connect(ep))

    def _close_all(self) -> None:
        self.closed = True
        for ep in self.endpoints.values():
            for sock in (ep.sock, ep.listener, ep.pending):
                if sock is not None:
                    if self.loop is not None:
                        self.loop.remove_reader(sock.fileno())
                        self.loop.remove_writer(sock.fileno())
                    sock.close()
            ep.sock = ep.listener = ep.pending = None


def _bound(family, address, text):
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)
    except OSError as err:
        sock.close()
        raise ShimError("relay", text, f"cannot listen ({_cause(err)})",
                        "pick a free port or path", reason=REASON_RELAY_FAILED) from None
    return sock


def _remove_stale_socket(path) -> None:
    import stat

    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass
