"""`tcp://HOST:PORT`, `unix:///PATH` (a stream of JSON lines) and `udp://HOST:PORT` (one
record per datagram)."""

import socket

from shim.streams.sinks.base import Sink

CONNECT_TIMEOUT = 5.0
UDP_MAX = 65507


class StreamSink(Sink):
    kind = "stream"

    def __init__(self, url, address, **common):
        super().__init__(url, **common)
        self.family, self.host, self.port = address
        self.kind = self.family
        self._sock = None

    def connect(self) -> None:
        if self.family == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = self.host
        else:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            family, _, _, _, target = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(target)
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def deliver(self, batch: "list[bytes]") -> None:
        data = memoryview(b"".join(batch[self.done:]))
        offset = 0
        try:
            while offset < len(data):
                # MSG_NOSIGNAL: a peer that went away is an EPIPE here, not a SIGPIPE that
                # the signalfd would read and forward to the delegate.
                offset += self._sock.send(data[offset:], socket.MSG_NOSIGNAL)  # type: ignore[union-attr]
        finally:
            # A record cut short is re-sent whole on the next connection.
            while self.done < len(batch) and offset >= len(batch[self.done]):
                offset -= len(batch[self.done])
                self.done += 1

    def disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def interrupt(self) -> None:
        sock = self._sock
        if sock is not None:  # wakes a send() blocked on a peer that stopped reading
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class DatagramSink(Sink):
    kind = "udp"

    def __init__(self, url, address, **common):
        super().__init__(url, **common)
        _, self.host, self.port = address
        self._sock = None
        self._target = None

    def connect(self) -> None:
        family, _, _, _, self._target = socket.getaddrinfo(self.host, self.port,
                                                           type=socket.SOCK_DGRAM)[0]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)

    def deliver(self, batch: "list[bytes]") -> None:
        for record in batch[self.done:]:
            # A lost datagram is lost (UDP); a refused one (nobody listening) too.
            try:
                self._sock.sendto(record[:UDP_MAX], self._target)  # type: ignore[union-attr]  # opened by connect()
            except (ConnectionRefusedError, BlockingIOError):
                pass
            self.done += 1

    def disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
