"""A small blocking HTTP/1.1 client: timeouts, a size cap, proxies, TLS, retries.

Why not urllib.request or requests: requests (with urllib3, idna, charset detection) adds
1.88 MiB of bytecode to the frozen binary and 74.2 ms of imports, against 375 KiB and
12.4 ms for this module (scripts/bench alternatives; docs/architecture.md); urllib.request
(29.4 ms) pulls in email, mimetypes and cookie handling at import, hides the response-size
and per-read deadline we need, and handles CONNECT proxies and retries in ways we cannot
bound.  Why not even
`http.client`, the layer both are built on: it imports `email` (its header parser) and with
it ~15 ms of every start that fetches a secret over the network (SHIM_PROFILE_START=1 in
the static binary), it reads chunk sizes with int(x, 16) ("-5", "0x10" pass) and it cannot
say "cut short" in words.  HTTP/1.1 framing for a client that sends one request at a time
is small (RFC 9112: a status line, header lines, then Content-Length, chunked, or until
close), so it is written here, ~150 lines over a socket's buffered reader, with every
read bounded by the deadline and every length checked.

API (the secret sources, the log sink and the heartbeat use it):

    client = Client(timeout=10)                     # one per phase; thread-safe; pools connections
    resp = client.request("GET", url, headers={...}, body=b"", tls=ctx, deadline=t)
    resp.status, resp.headers["content-type"], resp.body, resp.json(), resp.error_text()

`request()` returns a `Response` for every HTTP status (the caller decides what a 404
means) after retrying 429 and 5xx; it raises `HttpError` only when no usable response came:
connection refused, timeout, TLS failure, a body over the cap, cancellation.  Retries use
exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): sleep = random() * min(cap, base * 2**attempt), never past the deadline.  4xx
other than 429 is never retried: an auth failure does not heal by asking again.

The clock, sleep and random source are attributes so unit tests never sleep.
"""

import os
import socket
import sys
import threading
import time

from shim.net import proxy as _proxy, url as _url

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import ssl
    from typing import Any, BinaryIO, Callable

MAX_BODY = 64 << 20  # 64 MiB: larger than any secret or config document we expect
DEFAULT_TIMEOUT = 10.0
_CHUNK = 1 << 16
_MAX_LINE = 65536  # a chunk-size or trailer line (http.client's header line limit too)
_MAX_TRAILERS = 100
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_MAX_HEADERS = 100  # as http.client


class HttpError(Exception):
    """No usable HTTP response.  `retryable` says whether another attempt could help."""

    def __init__(self, cause, retryable=False):
        super().__init__(cause)
        self.cause = cause
        self.retryable = retryable


class Response:
    """Status, lower-cased headers and the whole body (bytes, at most the cap)."""

    __slots__ = ("status", "reason", "headers", "body", "url")

    def __init__(self, status, reason, headers, body, url=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> "Any":
        """The body as JSON; ValueError when it is not JSON."""
        from shim.util.jsonio import scan
        return scan(self.body)

    def error_text(self, limit: int = 300) -> str:
        """The server's own error text, one line, short: for messages (never a 2xx body).
        Sensitive values are replaced before the text is cut or its spaces collapsed: a
        server that reflects the request must not show half a token past the cut."""
        from shim.errors import redact
        text = " ".join(redact(self.body[:65536].decode("utf-8", "replace")).split())
        return text[:limit] + ("..." if len(text) > limit else "")


class Retry:
    """How often and how long to back off.  attempts counts every try, the first included."""

    __slots__ = ("attempts", "base", "cap")

    def __init__(self, attempts=4, base=0.2, cap=5.0):
        self.attempts = attempts
        self.base = base
        self.cap = cap

    def backoff(self, attempt: int, rnd: "Callable[[], float]") -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt))."""
        return rnd() * min(self.cap, self.base * (2 ** attempt))


NO_RETRY = Retry(attempts=1)


def retry_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


class Client:
    """Blocking HTTP/1.1 with a small keep-alive pool (thread-safe)."""

    def __init__(self, timeout=DEFAULT_TIMEOUT, max_bytes=MAX_BODY, retry=None, env=None,
                 tls=None, clock=time.monotonic, sleep=time.sleep, random=None,
                 cancelled=None):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retry = retry or Retry()
        self.env = os.environ if env is None else env
        self.tls = tls  # default SSLContext for https; a request may pass its own
        self.clock = clock
        self.sleep = sleep
        self.random = random or _uniform
        self.cancelled = cancelled or (lambda: False)
        self._idle = {}
        self._sessions = {}  # pool key -> the last TLS session, for resumption
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------
    def request(self, method: str, url: str, headers: "dict[str, str] | None" = None,
                body: "bytes | None" = None, *, timeout: "float | None" = None,
                max_bytes: "int | None" = None, tls: "ssl.SSLContext | None" = None,
                deadline: "float | None" = None, retry: "Retry | None" = None) -> Response:
        """Send one request, retrying per policy; Response, or HttpError when none came."""
        retry = retry or self.retry
        last = None
        for attempt in range(retry.attempts):
            if self.cancelled():
                raise HttpError("cancelled")
            try:
                resp = self._once(method, url, headers or {}, body, timeout or self.timeout,
                                  max_bytes or self.max_bytes, tls, deadline)
            except HttpError as err:
                if not err.retryable:
                    raise
                last, delay_hint = err, 0.0
            else:
                if not retry_status(resp.status):
                    return resp
                last, delay_hint = resp, _retry_after(resp)
            if attempt + 1 >= retry.attempts:
                break
            delay = max(retry.backoff(attempt, self.random), min(delay_hint, retry.cap))
            if deadline is not None and self.clock() + delay >= deadline:
                break
            self.sleep(delay)
        if isinstance(last, Response):
            return last
        raise last  # type: ignore[misc]  # the loop ran at least once: an HttpError

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- one attempt -----------------------------------------------------------------
    def _once(self, method, url, headers, body, timeout, max_bytes, tls, deadline):
        try:
            target = _url.parse(url)
        except _url.URLError as err:
            raise HttpError(f"cannot request {_redact(url)}: {err}") from None
        scheme, host, port, path = target.scheme, target.host, target.port, target.path
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        start = self.clock()
        end = start + timeout
        if deadline is not None:
            end = min(end, deadline)
        if end - start <= 0:
            raise HttpError("deadline passed before the request was sent")
        try:
            via = _proxy.proxy_for(scheme, host, port, self.env)
        except ValueError as err:
            raise HttpError(f"bad proxy setting: {err}") from None
        ctx = None
        if scheme == "https":
            _require_tls()  # fails clearly where there is no TLS
            ctx = tls or self.tls
            if ctx is None:
                from shim.errors import ShimError
                from shim.net.tls import client_context
                try:
                    ctx = self.tls = client_context()
                except ShimError as err:  # a bad SSL_CERT_FILE: this request's failure, in words
                    raise HttpError(f"{err.operation} {err.obj}: {err.cause}") from None
        key = (scheme, host, port, via.host if via else None, via.port if via else None, id(ctx))
        hdrs = _headers({"Host": _host_header(host, port, scheme), "User-Agent": "shim",
                         "Accept-Encoding": "identity"}, headers)
        if via is not None and scheme == "http":
            path = f"http://{_host_header(host, port, scheme)}{path}"
            if via.auth:
                hdrs.append(("Proxy-Authorization", via.auth))
        request_bytes = _request_bytes(method, path, hdrs, body)
        # A pooled connection may have been closed by the server meanwhile: one free retry.
        for fresh in (False, True):
            conn = None if fresh else self._take(key)
            reused = conn is not None
            if conn is None:
                try:
                    conn = self._connect(scheme, host, port, via, ctx, end - self.clock(), key)
                except HttpError:
                    raise
                except Exception as err:  # refused, unresolvable, TLS, proxy: in words
                    raise _transport_error(err, host, port, timeout, ctx) from None
            try:
                self._settle(conn, end, timeout)
                conn.send(request_bytes)
                resp = conn.read_head(method, where)
            except (_Closed, BrokenPipeError, ConnectionResetError) as err:
                conn.close()
                if reused:
                    continue  # the server closed an idle connection: one fresh try
                raise HttpError(f"connection to {where} closed: {_why(err)}", retryable=True) from None
            except HttpError:
                conn.close()
                raise
            except Exception as err:
                conn.close()
                raise _transport_error(err, host, port, timeout, ctx) from None
            try:
                data = self._read(resp, conn, max_bytes, end, timeout, where, method)
            except Exception as err:
                conn.close()
                if isinstance(err, HttpError):
                    raise
                raise _transport_error(err, host, port, timeout) from None
            session = getattr(conn.sock, "session", None) if scheme == "https" else None
            if session is not None:
                self._sessions[key] = session
            if resp.will_close:
                conn.close()
            else:
                self._give(key, conn)
            return Response(resp.status, resp.reason, resp.header_dict(), data, url)
        raise HttpError(f"connection to {host}:{port} closed", retryable=True)  # pragma: no cover

    def _connect(self, scheme, host, port, via, ctx, timeout, key):
        conn = _Conn(max(0.001, timeout))
        try:
            conn.open(host, port, via, ctx if scheme == "https" else None,
                      self._sessions.get(key) if scheme == "https" else None)
        except Exception:
            conn.close()
            raise
        return conn

    def _read(self, resp, conn, max_bytes, end, timeout, where, method):
        """The whole body, framed exactly as the headers say: a body cut short, a
        Content-Length that is not one number, or a malformed chunk is an HttpError, never
        a shorter secret or a wait for the deadline."""
        expected, chunked = _framing(resp, where, method)
        if expected is not None and expected > max_bytes:
            raise HttpError(f"response body of {expected} bytes is over the "
                            f"{_size(max_bytes)} cap")
        if chunked:
            return self._read_chunked(conn.fp, conn, max_bytes, end, timeout, where)
        chunks, total = [], 0
        while expected is None or total < expected:  # ours: http.client ignores "7, 7"
            self._settle(conn, end, timeout)
            chunk = conn.fp.read1(_CHUNK if expected is None else min(_CHUNK, expected - total))
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise HttpError(f"response body is over the {_size(max_bytes)} cap")
            chunks.append(chunk)
        if expected is not None and total < expected:
            raise HttpError(f"response from {where} cut short: the connection closed after "
                            f"{total} of {expected} bytes (Content-Length)", retryable=True)
        return b"".join(chunks)

    # Why a chunked decoder of our own: http.client reads a chunk size with int(x, 16), so
    # it accepts "-5", "0x10" and "1_0", and reports a body cut short as a ValueError or
    # IncompleteRead.  RFC 9112, section 7.1: chunk-size = 1*HEXDIG, then optional
    # extensions after ';', CRLF, the data, CRLF; a last chunk of size 0 and trailer lines.
    def _read_chunked(self, fp, conn, max_bytes, end, timeout, where):
        chunks, total = [], 0
        while True:
            line = self._line(fp, conn, end, timeout, where)
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not (1 <= len(size_text) <= 16 and all(c in _HEXDIGITS for c in size_text)):
                raise HttpError(f"malformed chunked response from {where}: chunk size "
                                f"{_shown(size_text)} is not a hexadecimal number")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > max_bytes:
                raise HttpError(f"response body is over the {_size(max_bytes)} cap")
            while size:
                self._settle(conn, end, timeout)
                piece = fp.read1(min(size, _CHUNK))
                if not piece:
                    raise HttpError(f"response from {where} cut short inside a chunk "
                                    "(chunked encoding)", retryable=True)
                chunks.append(piece)
                size -= len(piece)
            if self._line(fp, conn, end, timeout, where) != b"":
                raise HttpError(f"malformed chunked response from {where}: a chunk is longer "
                                "than its size says")
        for _ in range(_MAX_TRAILERS):  # trailer fields, up to the empty line
            if self._line(fp, conn, end, timeout, where) == b"":
                return b"".join(chunks)
        raise HttpError(f"malformed chunked response from {where}: more than "
                        f"{_MAX_TRAILERS} trailer lines")

    def _line(self, fp, conn, end, timeout, where):
        self._settle(conn, end, timeout)
        raw = fp.readline(_MAX_LINE + 1)
        if len(raw) > _MAX_LINE:
            raise HttpError(f"malformed chunked response from {where}: a line over "
                            f"{_MAX_LINE} bytes")
        if not raw.endswith(b"\n"):
            raise HttpError(f"response from {where} cut short (chunked encoding without "
                            "its last chunk)", retryable=True)
        line = raw[:-1]
        return line[:-1] if line.endswith(b"\r") else line

    def _settle(self, conn, end, timeout):
        """Give the next read what is left of the deadline, or fail when nothing is."""
        left = end - self.clock()
        if left <= 0:
            raise HttpError(f"timed out after {timeout:g}s reading the response",
                            retryable=True)
        conn.sock.settimeout(left)

    def _take(self, key):
        with self._lock:
            conns = self._idle.get(key)
            return conns.pop() if conns else None

    def _give(self, key, conn) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(conn)


class _Closed(Exception):
    """The peer closed the connection before any byte of a reply (a stale pooled one)."""


def _uniform():
    """A float in [0, 1) for backoff jitter (os.urandom: `random` is an import we skip)."""
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


def _require_tls():
    """ssl, or an HttpError where this Python has no _ssl (plain http still works there)."""
    try:
        import ssl  # noqa: F401
    except ImportError:
        raise HttpError("TLS is not available in this Python (no _ssl module)") from None


class _Conn:
    """One connection: TCP (through a CONNECT tunnel for https via a proxy), TLS with
    session resumption, and a buffered reader for the replies."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.sock = None
        self.fp = None

    def open(self, host: str, port: int, via: "_proxy.Proxy | None", ctx: "ssl.SSLContext | None",
             session: "ssl.SSLSession | None") -> None:
        name, port_ = (via.host, via.port) if via else (host, port)
        # An ASCII name as bytes: getaddrinfo then skips the idna codec (and unicodedata).
        self.sock = socket.create_connection((name.encode("ascii") if name.isascii() else name, port_),  # type: ignore[arg-type]
                                             timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is None:
            self.fp = self.sock.makefile("rb")
            return
        if via is not None:
            self._tunnel(host, port, via)
        # TLS (SNI, hostname check) is with `host` itself, through the tunnel if any; a
        # session of the same server resumes: 50 concurrent fetches, one full handshake.
        # An ASCII name is given as bytes: ssl then skips its idna codec (and unicodedata).
        name = host.encode("ascii") if host.isascii() else host
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name, session=session)
        self.fp = self.sock.makefile("rb")

    def _tunnel(self, host, port, via):
        authority = _host_header(host, port, "connect")
        hdrs = [("Host", authority)] + ([("Proxy-Authorization", via.auth)] if via.auth else [])
        self.sock.sendall(_request_bytes("CONNECT", authority, hdrs, None))  # type: ignore[union-attr]  # connected
        self.fp = self.sock.makefile("rb")  # type: ignore[union-attr]  # connected
        reply = self.read_head("CONNECT", f"proxy {via.host}:{via.port}")
        if not 200 <= reply.status < 300:
            raise OSError(f"Tunnel connection failed: {reply.status} {reply.reason}".rstrip())
        self.fp.close()  # nothing follows a 2xx until the TLS client (we) speaks first
        self.fp = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)  # type: ignore[union-attr]  # connected

    def read_head(self, method: str, where: str) -> "_Reply":
        """The status line and headers of the next reply (1xx informational ones skipped)."""
        while True:
            line = self.fp.readline(_MAX_LINE + 1)  # type: ignore[union-attr]  # connected
            if not line:
                raise _Closed("no reply")
            reply = _Reply.parse_status(line, where)
            reply.read_headers(self.fp, where)  # type: ignore[arg-type]  # connected
            if reply.status >= 200 or reply.status == 101:
                reply.settle_close(method)
                return reply

    def close(self) -> None:
        for thing in (self.fp, self.sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
        self.fp = self.sock = None


class _Reply:
    """A status line and its header fields (names lower-cased, order and repeats kept)."""

    __slots__ = ("version", "status", "reason", "fields", "will_close")

    def __init__(self, version, status, reason):
        self.version, self.status, self.reason = version, status, reason
        self.fields = []
        self.will_close = False

    @classmethod
    def parse_status(cls, line: bytes, where: str) -> "_Reply":
        if len(line) > _MAX_LINE:
            raise HttpError(f"malformed HTTP response from {where}: a status line over "
                            f"{_MAX_LINE} bytes", retryable=True)
        text = line.decode("latin-1").rstrip("\r\n")
        version, _, rest = text.partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not \
                (code.isascii() and code.isdigit()):
            raise HttpError(f"malformed HTTP response from {where}: bad status line "
                            f"{_shown(text)}", retryable=True)
        return cls(version, int(code), reason.strip())

    def read_headers(self, fp: "BinaryIO", where: str) -> None:
        for _ in range(_MAX_HEADERS + 1):
            line = fp.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise HttpError(f"malformed HTTP response from {where}: a header line over "
                                f"{_MAX_LINE} bytes", retryable=True)
            if not line.endswith(b"\n"):
                raise HttpError(f"response from {where} cut short in its headers", retryable=True)
            if line in (b"\r\n", b"\n"):
                return
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and self.fields:  # obsolete line folding: one value
                name, value = self.fields[-1]
                self.fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip() or any(c in name for c in " \t"):
                raise HttpError(f"malformed HTTP response from {where}: bad header line "
                                f"{_shown(text)}", retryable=True)
            self.fields.append((name.lower(), value.strip(" \t")))
        raise HttpError(f"malformed HTTP response from {where}: more than {_MAX_HEADERS} headers",
                        retryable=True)

    def get_all(self, name: str) -> "list[str]":
        return [value for key, value in self.fields if key == name]

    def header_dict(self) -> "dict[str, str]":
        """Lower-cased name -> value; repeated fields joined with ', ' (RFC 9110, 5.3)."""
        out: dict = {}
        for name, value in self.fields:
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def settle_close(self, method: str) -> None:
        """Whether the connection ends with this reply (then it is never pooled)."""
        tokens = {t.strip().lower() for v in self.get_all("connection") for t in v.split(",")}
        close = "close" in tokens or (self.version == "HTTP/1.0" and "keep-alive" not in tokens)
        no_body = method == "HEAD" or self.status in (204, 304) or self.status < 200
        length_known = bool(self.get_all("content-length")) or bool(self.get_all("transfer-encoding"))
        self.will_close = close or not (no_body or length_known)


def _headers(defaults, given):
    """The request's header fields: `given` (a dict or pairs) replaces a default of the
    same name, case-insensitively (a signed `host` is the Host sent); no line breaks."""
    pairs = list(given.items()) if isinstance(given, dict) else list(given)
    names = {str(name).lower() for name, _ in pairs}
    out = [(k, v) for k, v in defaults.items() if k.lower() not in names] + pairs
    for name, value in out:
        if any(c in str(name) + str(value) for c in "\r\n\0"):
            raise HttpError(f"request header {_shown(str(name))} contains a line break or NUL; "
                            "fix the setting that supplies it")
    return out


def _request_bytes(method, target, headers, body):
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = [f"{method} {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise HttpError(f"request to {_shown(target)}: a header or the path has characters "
                        "outside ISO-8859-1; percent-encode them") from None
    return head + body if body else head


def _framing(resp, where, method):
    """(body length or None, chunked?) as RFC 9112, section 6.3 reads the headers; HttpError
    for what a careful client refuses: an unknown transfer coding, a Content-Length that is
    not one decimal number (several differing ones included)."""
    if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
        return 0, False  # no body, whatever the headers say
    if method == "CONNECT" and 200 <= resp.status < 300:
        return 0, False
    codings = resp.get_all("transfer-encoding")
    if codings:
        names = [c.strip().lower() for value in codings for c in value.split(",") if c.strip()]
        if names != ["chunked"]:
            raise HttpError(f"malformed HTTP response from {where}: Transfer-Encoding "
                            f"{_shown(', '.join(codings))} is not supported (only chunked)")
        return None, True  # chunked wins over any Content-Length (section 6.3, rule 3)
    lengths = resp.get_all("content-length")
    if not lengths:
        return None, False  # the body ends when the server closes the connection
    values = {v.strip() for value in lengths for v in value.split(",")}
    value = values.pop() if len(values) == 1 else ""
    if not (value.isascii() and value.isdigit()):
        raise HttpError(f"malformed HTTP response from {where}: Content-Length "
                        f"{_shown(', '.join(lengths))} is not one whole number")
    return int(value), False


def _shown(value):
    """A header or protocol line for a message: short, printable, quoted."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    from shim.util.text import show
    return show(value[:40])


def _retry_after(resp):
    value = resp.headers.get("retry-after", "")
    return float(value) if value.isdigit() else 0.0


def _host_header(host, port, scheme):
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown if port == default else f"{shown}:{port}"


def _size(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"


def _why(err):
    return (getattr(err, "strerror", None) or str(err) or type(err).__name__).lower()


def _redact(url):
    """A URL for messages: no userinfo, no query (either could carry a credential)."""
    return _url.redacted(url)


def _transport_error(err, host, port, timeout, ctx=None):
    """Map a socket/TLS/protocol exception to a one-line HttpError with a retry verdict."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    ssl = sys.modules.get("ssl")  # imported only by https requests: plain http works without _ssl
    if ssl is not None and isinstance(err, ssl.SSLCertVerificationError):
        store = getattr(ctx, "shim_trust_source", None)  # issue 9's context names its store
        return HttpError(f"TLS certificate of {where} not trusted: {err.verify_message}" +
                         (f" (trust store: {store})" if store else ""))
    if ssl is not None and isinstance(err, ssl.SSLError):
        from shim.net.tls import ssl_cause
        return HttpError(f"TLS handshake with {where} failed: {ssl_cause(err)}")
    if isinstance(err, (socket.timeout, TimeoutError)):
        return HttpError(f"timed out after {timeout:g}s talking to {where}", retryable=True)
    if isinstance(err, socket.gaierror):
        temporary = err.errno in (socket.EAI_AGAIN,)
        return HttpError(f"cannot resolve host {host}: {err.strerror}", retryable=temporary)
    if isinstance(err, ConnectionRefusedError):
        return HttpError(f"connection to {where} refused", retryable=True)
    if isinstance(err, OSError):
        msg = _why(err)
        if "tunnel connection failed" in msg:
            return HttpError(f"proxy refused CONNECT to {where}: {msg}", retryable=True)
        return HttpError(f"connection to {where} failed: {msg}", retryable=True)
    return HttpError(f"request to {where} failed: {type(err).__name__}: {err}")
