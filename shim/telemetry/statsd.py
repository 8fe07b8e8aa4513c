"""An in-process StatsD relay, replacing the sidecar: listen, tag, batch, forward.

The delegate sends to 127.0.0.1:8125/udp (STATSD_HOST/PORT and DD_AGENT_HOST/
DD_DOGSTATSD_PORT point it there); every well-formed line is forwarded to the
gateway unchanged except for the added tags, batched into datagrams of at most
`--statsd-mtu` bytes (or newline-separated on a TCP connection).  Tags are added
in the style the line already uses: DogStatsD `|#k:v`, or InfluxDB/Telegraf
`name,k=v:...`; untagged lines get `--statsd-tag-style`'s.  Garbage is dropped
and counted.  shim's own metrics (`shim.*`) go to the same gateway at the end.
"""

import socket

from shim.errors import usage_error
from shim.service import Service
from shim.util.text import oserror, show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.loop import Loop
    from shim.service import Handoff, Start, Summary

TYPES = frozenset((b"c", b"g", b"ms", b"h", b"s", b"d", b"t"))
TCP_BUFFER = 1 << 20
RCVBUF = 4 << 20
FIX = "write HOST:PORT, udp://HOST:PORT or tcp://HOST:PORT"


def parse_gateway(text: str, flag: str = "--statsd-gateway") -> "tuple[str, str, int]":
    """(proto, host, port) from HOST:PORT, udp://HOST:PORT, tcp://HOST:PORT."""
    proto, sep, rest = text.partition("://")
    if not sep:
        proto, rest = "udp", text
    host, colon, port = rest.rpartition(":")
    host = host.strip("[]")
    if proto not in ("udp", "tcp") or not colon or not host or not port.isdigit() or \
            not 0 < int(port) < 65536:
        raise usage_error(f"option {flag}", f"cannot read address {show(text)}", FIX)
    return proto, host, int(port)


def parse_tags(tags: "list[str]") -> "list[tuple[bytes, bytes | None]]":
    """['k:v', 'flag'] -> [(b'k', b'v'), (b'flag', None)]; usage error for empty or odd ones."""
    out = []
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not key or any(c in tag for c in "|#,\n ") or (sep and not value):
            raise usage_error("option --statsd-tag", f"invalid tag {show(tag)}",
                              "write KEY:VALUE without spaces, '|', '#' or ','")
        out.append((key.encode(), value.encode() if sep else None))
    return out


class Tagger:
    """Validates one StatsD line and adds the configured tags in the line's own style."""

    def __init__(self, tags, style="dogstatsd"):
        self.dog = b",".join(k + (b":" + v if v is not None else b"") for k, v in tags)
        self.influx = b"".join(b"," + k + b"=" + (v if v is not None else b"true") for k, v in tags)
        self.style = style

    def rewrite(self, line: bytes) -> "bytes | None":
        """The line to forward, or None when it is not StatsD."""
        if line.startswith(b"_e{"):  # DogStatsD events and service checks
            return self._event(line)
        if line.startswith(b"_sc|"):
            return self._service_check(line)
        name, colon, rest = line.partition(b":")
        if not colon or not name or b" " in name or b"|" in name:
            return None
        fields = rest.split(b"|")
        if len(fields) < 2 or fields[1] not in TYPES or not _values_ok(fields[0], fields[1]):
            return None
        for extra in fields[2:]:
            if not extra or extra[:1] not in b"@#cTe":
                return None
            if extra[:1] == b"@" and not _number(extra[1:]):
                return None
        if not self.dog:
            return line
        if b"," in name:  # InfluxDB/Telegraf style tags live in the name
            return name + self.influx + b":" + rest
        if self.style == "influx" and not any(f[:1] == b"#" for f in fields[2:]):
            return name + self.influx + b":" + rest
        return self._dog(line)

    def _dog(self, line):
        fields = line.split(b"|")
        for i, field in enumerate(fields):
            if field[:1] == b"#" and i > 0:
                fields[i] = field + b"," + self.dog if len(field) > 1 else b"#" + self.dog
                return b"|".join(fields)
        return line + b"|#" + self.dog

    def _event(self, line):
        """`_e{T,X}:title|text|d:..|h:..|p:..|t:..|#tags`: title and text are counted in
        bytes (they may hold '|'), so tags go only into the fields after them."""
        head, colon, rest = line.partition(b"}:")
        lengths = head[3:].split(b",")
        if not colon or len(lengths) != 2 or not all(n.isdigit() for n in lengths):
            return None
        title_len, text_len = int(lengths[0]), int(lengths[1])
        end = title_len + 1 + text_len
        if title_len == 0 or len(rest) < end or rest[title_len:title_len + 1] != b"|":
            return None
        fields = rest[end:]
        if fields and fields[:1] != b"|":
            return None
        if not self.dog:
            return line  # nothing to add: forwarded byte for byte
        tagged = self._tag_fields(fields[1:].split(b"|") if fields else [], None)
        return line[:len(head) + 2 + end] + b"".join(b"|" + f for f in tagged)

    def _service_check(self, line):
        """`_sc|name|status|d:..|h:..|#tags|m:message`: the message comes last and may hold
        '|', so tags go before it."""
        fields = line.split(b"|")
        if len(fields) < 3 or not fields[1] or fields[2] not in (b"0", b"1", b"2", b"3"):
            return None
        if not self.dog:
            return line
        rest = fields[3:]
        message = next((i for i, f in enumerate(rest) if f[:2] == b"m:"), None)
        if message is not None:
            rest = rest[:message] + [b"|".join(rest[message:])]
        return b"|".join(fields[:3] + self._tag_fields(rest, message))

    def _tag_fields(self, fields, before):
        """`fields` with the configured tags added to its `#` field, or as a new one (at
        index `before`, else last)."""
        for i, field in enumerate(fields):
            if field[:1] == b"#" and (before is None or i < before):
                fields[i] = field + b"," + self.dog if len(field) > 1 else b"#" + self.dog
                return fields
        at = len(fields) if before is None else before
        return fields[:at] + [b"#" + self.dog] + fields[at:]


def _number(text):
    try:
        float(text)
        return text.strip() == text and text != b""
    except ValueError:
        return False


def _values_ok(values, kind):
    if kind == b"s":  # a set counts unique strings
        return values != b""
    for value in values.split(b":"):  # DogStatsD packs several values in one line
        if kind == b"g" and value[:1] in (b"+", b"-"):
            value = value[1:]
        if not _number(value):
            return False
    return True


class StatsdRelay(Service):
    """A run service: the listening socket and the gateway connection on the loop."""

    def __init__(self, listen, gateway, tags=(), style="dogstatsd", mtu=1432,
                 flush_interval=0.1, log=None):
        if "://" not in listen and ":" not in listen.strip("[]"):
            listen += ":8125"  # a host alone listens on the StatsD port
        self.listen = parse_gateway(listen, "--statsd-listen")
        if self.listen[0] != "udp":
            raise usage_error("option --statsd-listen", "the relay listens on UDP only",
                              "write HOST:PORT")
        self.gateway = parse_gateway(gateway)
        self.tagger = Tagger(parse_tags(tags), style)
        self.tags = tags
        self.mtu = max(64, mtu)
        self.flush_interval = flush_interval
        self.log = log or (lambda level, message: None)
        self.loop: "Loop" = None  # type: ignore[assignment]  # set by start()
        self.sock = None
        self.out = None  # gateway socket (udp) / connection (tcp)
        self.batch, self.batch_size = [], 0
        self.timer = None
        self.counters = {"received": 0, "forwarded": 0, "garbage": 0, "datagrams": 0,
                         "dropped": 0}
        self._tcp_buffer = bytearray()
        self.target = None  # (family, address) of the gateway once resolved
        self._resolving = False
        self._held, self._held_bytes = [], 0  # batches waiting for the resolution
        self._tcp_connecting = False
        self._warned = False

    # -- run hooks ---------------------------------------------------------------------
    def start(self, ctx: "Start") -> "Handoff":
        from shim.service import Handoff

        self.loop = ctx.resident.loop
        _, host, port = self.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:  # bursts of small datagrams overflow the default buffer (kernel caps it at rmem_max)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        except OSError:
            pass
        try:
            self.sock.bind((host, port))
        except OSError as err:
            self.sock.close()
            from shim.errors import REASON_SETUP, ShimError

            raise ShimError("listen", f"statsd relay {host}:{port}", oserror(err),
                            "pick another --statsd-listen", reason=REASON_SETUP) from None
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self._resolve()  # now, so the first metrics find the gateway's address ready
        host, port = self.sock.getsockname()[:2]
        # A wildcard is where to listen, not an address to send to: the delegate gets the
        # loopback address of the same family, which the wildcard also covers.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return Handoff(env=dict(STATSD_HOST=host, STATSD_PORT=str(port), DD_AGENT_HOST=host,
                                DD_DOGSTATSD_PORT=str(port)))

    def stop(self) -> dict:
        if self.sock is not None:
            self._readable()  # what the delegate sent last
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        self.flush()
        return {"statsd": dict(self.counters)}

    def finished(self, summary: "Summary") -> None:
        """shim's own metrics, after the outcome is known; then let go of the gateway."""
        for line in own_metrics(summary):
            tagged = self.tagger.rewrite(line)
            self._add(tagged if tagged is not None else line)
        self.flush()
        if self._held and self.loop is not None:  # the lookup is still out: a short wait
            self.loop.run_until(lambda: not self._resolving, self.loop.time() + 2.0)
        elif self._held:  # never started (the run failed before the delegate): the run is
            try:  # over, nothing else waits, so look the gateway up here
                info, error = self._lookup(), None
            except OSError as err:
                info, error = None, err
            self._resolved(info, error)
        if self._tcp_buffer and self.out is not None:  # last chance for a TCP gateway
            try:
                self.out.setblocking(True)
                self.out.settimeout(1.0)
                self.out.sendall(bytes(self._tcp_buffer))
            except OSError:
                pass
        if self.out is not None:
            self.out.close()
            self.out = None

    # -- relay -------------------------------------------------------------------------
    def _readable(self) -> None:
        for _ in range(512):  # bounded: other sources get their turn
            try:
                packet = self.sock.recv(65535)  # type: ignore[union-attr]  # open while registered
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            self.counters["received"] += 1
            for line in packet.split(b"\n"):
                line = line.rstrip(b"\r")
                if not line:
                    continue
                tagged = self.tagger.rewrite(line)
                if tagged is None:
                    self.counters["garbage"] += 1
                    continue
                self.counters["forwarded"] += 1
                self._add(tagged)
        if self.batch and self.timer is None and self.loop is not None:
            self.timer = self.loop.call_later(self.flush_interval, self.flush)

    def _add(self, line) -> None:
        if self.batch and self.batch_size + 1 + len(line) > self.mtu:
            self.flush()
        self.batch.append(line)
        self.batch_size += len(line) + (1 if len(self.batch) > 1 else 0)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.batch:
            return
        payload = b"\n".join(self.batch)
        n = len(self.batch)
        self.batch, self.batch_size = [], 0
        if self.target is None:  # the gateway's name is being resolved: hold (bounded)
            self._held.append((payload, n))
            self._held_bytes += len(payload)
            while self._held_bytes > TCP_BUFFER:
                old, old_n = self._held.pop(0)
                self._held_bytes -= len(old)
                self.counters["dropped"] += old_n
            self._resolve()
            return
        self._send(payload, n)

    def _resolve(self) -> None:
        """Look the gateway up on a worker thread: a slow DNS server must not hold the loop."""
        if self._resolving or self.loop is None:
            return
        self._resolving = True
        self.loop.run_in_thread(self._lookup, self._resolved)

    def _lookup(self):
        proto, host, port = self.gateway
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        return socket.getaddrinfo(host, port, type=kind)[0]

    def _resolved(self, info, error) -> None:
        self._resolving = False
        held, self._held, self._held_bytes = self._held, [], 0
        if error is not None:  # tried again with the next metrics
            self._failed(sum(n for _, n in held), error)
            return
        self.target = (info[0], info[4])
        for payload, n in held:
            self._send(payload, n)

    def _failed(self, n, err) -> None:
        self.counters["dropped"] += n
        if not self._warned:
            proto, host, port = self.gateway
            self._warned = True
            self.log("warn", f"statsd gateway {proto}://{host}:{port}: "
                             f"{oserror(err)}; metrics are dropped "
                             "(counted) until it answers")

    def _send(self, payload, n) -> None:
        proto = self.gateway[0]
        try:
            if proto == "udp":
                if self.out is None:
                    family, target = self.target  # type: ignore[misc]  # resolved before a send
                    self.out = socket.socket(family, socket.SOCK_DGRAM)
                    self.out.setblocking(False)
                    self.out.connect(target)
                self.out.send(payload)
                self.counters["datagrams"] += 1
            else:
                self._tcp_send(payload + b"\n", n)
        except OSError as err:
            self._failed(n, err)

    # -- TCP gateway: a bounded buffer written when the socket is writable -----------------
    def _tcp_send(self, data, n):
        if len(self._tcp_buffer) + len(data) > TCP_BUFFER:
            raise OSError("the gateway connection is backed up")
        self._tcp_buffer += data
        if self.out is None and not self._tcp_connecting:
            family, target = self.target  # type: ignore[misc]  # resolved before a send
            self.out = socket.socket(family, socket.SOCK_STREAM)
            self.out.setblocking(False)
            self.out.connect_ex(target)
            self._tcp_connecting = True
        if self.loop is not None and self.out is not None:
            self.loop.add_writer(self.out.fileno(), self._tcp_writable)

    def _tcp_writable(self) -> None:
        self._tcp_connecting = False
        try:
            n = self.out.send(self._tcp_buffer, socket.MSG_NOSIGNAL)  # type: ignore[union-attr]
            del self._tcp_buffer[:n]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self.loop.remove_writer(self.out.fileno())  # type: ignore[union-attr]  # open while registered
            self.out.close()  # type: ignore[union-attr]  # open while registered
            self.out = None
            self.counters["dropped"] += self._tcp_buffer.count(b"\n")
            self._tcp_buffer.clear()
            if not self._warned:
                self._warned = True
                self.log("warn", f"statsd gateway: {oserror(err)}; "
                                 "reconnecting with the next metrics")
            return
        if not self._tcp_buffer:
            self.loop.remove_writer(self.out.fileno())  # type: ignore[union-attr]  # open while registered


def own_metrics(summary: "Summary") -> "list[bytes]":
    """shim's own metrics as StatsD lines: phases, exit code, signals, log counters."""
    lines = []
    for phase, seconds in summary.phases.items():
        lines.append(b"shim.phase.duration:%.3f|ms|#phase:%s" % (seconds * 1000, phase.encode()))
    outcome = summary.outcome
    if outcome is not None:
        lines.append(b"shim.exit_code:%d|g" % outcome.exit_code)
        lines.append(b"shim.runs:1|c|#reason:%s" % outcome.reason.encode())
    lines.append(b"shim.signals_forwarded:%d|c" % summary.counters.get("signals_forwarded", 0))
    logs = summary.counters.get("logs", {})
    for stream in ("stdout", "stderr"):
        if stream in logs:
            lines.append(b"shim.log.bytes:%d|c|#stream:%s" % (logs[stream]["bytes"], stream.encode()))
    for name, c in logs.get("sinks", {}).items():
        tag = name.split("://", 1)[0].encode()
        for key in ("records", "bytes", "dropped", "restarts"):
            lines.append(b"shim.log.sink.%s:%d|c|#sink:%s" % (key.encode(), c[key], tag))
    garbage = summary.counters.get("statsd", {}).get("garbage")
    if garbage:
        lines.append(b"shim.statsd.garbage:%d|c" % garbage)
    return lines
