"""Pipeline step: wait for dependencies before the delegate starts (`--wait-for URL`).

What dockerize's `-wait` and wait-for-it do, as a step of shim:

    tcp://HOST:PORT     a TCP connect succeeds
    http(s)://...       a GET answers 2xx (or one of ?status=CODES: 200,503 or 2xx,3xx);
                        TLS is verified as for the secret sources (SHIM_HTTP_CACERT,
                        SSL_CERT_FILE, the image's bundle, the embedded one)
    file:///PATH        PATH exists, as --wait-file (PATH.err skips the step, exit 121)
    dns://NAME          NAME resolves (getaddrinfo: /etc/hosts and resolv.conf)

All conditions are awaited together on the resident loop.  One attempt is one blocking
probe (connect, request, getaddrinfo) on a worker thread, as asyncio runs getaddrinfo:
the resolver has no timeout we could set, so ATTEMPT_TIMEOUT is enforced by a loop timer
and a late answer is ignored.  Between attempts a condition backs off exponentially with
jitter (half of the delay fixed, half random), so a fleet of shims waiting for one
database does not knock in step.  A stop signal wakes the loop and ends the wait at once
(128+n); `--wait-timeout` bounds the whole wait, wait files included (exit 123, reason
wait-timeout).  Progress goes to the log at info level.
"""

import os
import random as _random
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shim.errors import REASON_INTERRUPTED, REASON_SETUP, REASON_WAIT_TIMEOUT, ShimError, usage_error
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.proc.supervise import Resident

SCHEMES = ("tcp", "http", "https", "file", "dns")
SCHEMES_HELP = "use tcp://HOST:PORT, http(s)://HOST[:PORT]/PATH, file:///PATH or dns://NAME"
ATTEMPT_TIMEOUT = 5.0  # one connect / request / lookup; a hung resolver cannot stall the wait
BACKOFF_BASE = 0.1  # the first retry comes after 50-100 ms...
BACKOFF_CAP = 2.0  # ...doubling up to 1-2 s between attempts
PROGRESS_EVERY = 5.0  # how often the info log names what is still pending


class NotReady(Exception):
    """One attempt found the dependency not ready; `cause` says why (for the log)."""

    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


class Condition:
    """One URL to wait for: `probe(timeout)` returns when it is ready, else raises NotReady."""

    def __init__(self, url, scheme, shown, probe):
        self.url, self.scheme, self.shown, self.probe = url, scheme, shown, probe
        # the attempt state, kept by Wait
        self.ready = False
        self.attempts = 0
        self.cause = "not tried yet"
        self.inflight = False
        self.generation = 0
        self.retry_when_done = False
        self.ready_after = None

    def __repr__(self) -> str:
        return f"Condition({self.shown})"


# -- parsing: bad input fails before anything runs --------------------------------------
def plan(urls: "list[str]", where: str, environ: "Mapping[str, str]") -> "list[Condition]":
    """Conditions for `urls`; every mistake is one usage error (exit 125) naming `where`."""
    return [parse(url, where, environ) for url in urls]


def parse(url: str, where: str, environ: "Mapping[str, str] | None" = None) -> "Condition":
    environ = os.environ if environ is None else environ
    bad = f"option {where}"
    if not isinstance(url, str) or "://" not in url:
        raise usage_error(bad, f"{show(url)} is not a URL", SCHEMES_HELP)
    from shim.net.url import URLError, split
    try:
        parts, port = split(url)
    except URLError as err:  # urlsplit's own texts are Python's ("Port could not be cast...")
        raise usage_error(bad, f"cannot read {shown(url)}: {err}", SCHEMES_HELP) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise usage_error(bad, f"unknown URL scheme {show(parts.scheme)} in {shown(url)}",
                          SCHEMES_HELP)
    host = parts.hostname
    if scheme == "tcp":
        if not host or port is None:
            raise usage_error(bad, f"{shown(url)} has no {'host' if not host else 'port'}",
                              "write tcp://HOST:PORT")
        return Condition(url, scheme, shown(url), lambda t: probe_tcp(host, port, t))
    if scheme == "dns":
        name = host or parts.path.lstrip("/")
        if not name:
            raise usage_error(bad, f"{shown(url)} names no host", "write dns://NAME")
        return Condition(url, scheme, shown(url), lambda t: probe_dns(name))
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise usage_error(bad, f"{shown(url)} is not a local absolute path",
                              "write file:///ABSOLUTE/PATH (three slashes)")
        path = parts.path
        return Condition(url, scheme, shown(url), lambda t: probe_file(path))
    if not host:
        raise usage_error(bad, f"{shown(url)} has no host", "write http(s)://HOST[:PORT]/PATH")
    accept, query = _accepted_statuses(parts.query, bad, url)
    target = urlunsplit((scheme, parts.netloc, parts.path or "/", query, ""))
    probe = HttpProbe(target, accept, environ)
    return Condition(url, scheme, shown(url), probe)


def _accepted_statuses(query, bad, url):
    """The `status` parameter (not sent to the server) as a predicate, and the rest of the query."""
    pairs = parse_qsl(query, keep_blank_values=True)
    codes = [v for k, v in pairs if k == "status"]
    rest = urlencode([(k, v) for k, v in pairs if k != "status"])
    if not codes:
        return (lambda status: 200 <= status < 300), rest
    allowed: set[int] = set()
    for word in ",".join(codes).split(","):
        word = word.strip().lower()
        if len(word) == 3 and word[0] in "12345" and word[1:] == "xx":
            allowed.update(range(int(word[0]) * 100, int(word[0]) * 100 + 100))
        elif word.isdigit() and len(word) == 3 and 100 <= int(word) <= 599:
            allowed.add(int(word))
        else:
            raise usage_error(bad, f"invalid status {show(word)} in {shown(url)}",
                              "write ?status=200,503 or ?status=2xx,3xx")
    return allowed.__contains__, rest


def shown(url: str) -> str:
    """A URL for messages: no user:password, no query values (they may hold tokens)."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return show(url.split("://", 1)[0] + "://...")
    query = parts.query
    if query and any(k != "status" for k, _ in parse_qsl(query, keep_blank_values=True)):
        query = "..."
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# -- probes: one attempt each, blocking, run on a worker thread --------------------------
def probe_tcp(host: str, port: int, timeout: float) -> None:
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as err:
        raise NotReady(f"cannot resolve {host} ({err.strerror})") from None
    except OSError as err:
        raise NotReady((err.strerror or str(err) or type(err).__name__).lower()) from None


def probe_dns(name: str) -> None:
    import socket

    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise NotReady(f"does not resolve ({getattr(err, 'strerror', None) or err})") from None
    if not found:
        raise NotReady("resolves to no address")


def probe_file(path: str) -> None:
    from shim.run.waiter import Skip, state

    found = state(path)
    if found == "failed":
        raise Skip(path)
    if found != "ready":
        raise NotReady("not there yet")


class HttpProbe:
    """GET the URL once (no retries of its own, no redirects followed); ready on an accepted status."""

    def __init__(self, url, accept, environ):
        self.url, self.accept, self.environ = url, accept, environ
        self.client: "Any" = None
        self.tls: "Any" = None

    def prepare(self) -> None:
        """Made on the loop's thread before the first attempt: a bad trust store is a setup error."""
        from shim.net import http
        from shim.net.tls import client_context

        self.client = http.Client(retry=http.NO_RETRY, env=self.environ)
        if self.url.startswith("https:"):
            try:
                import ssl  # noqa: F401
            except ImportError:
                raise ShimError("wait for", shown(self.url), "TLS is not available in this build",
                                "use http://, or a shim built with _ssl", reason=REASON_SETUP) from None
            self.tls = client_context(cafile=self.environ.get("SHIM_HTTP_CACERT") or None,
                                      environ=self.environ)

    def __call__(self, timeout):
        from shim.net.http import HttpError

        try:
            resp = self.client.request("GET", self.url, timeout=timeout, tls=self.tls,
                                       max_bytes=1 << 20)
        except HttpError as err:
            raise NotReady(err.cause) from None
        if not self.accept(resp.status):
            raise NotReady(f"HTTP {resp.status}")


# -- the wait --------------------------------------------------------------------------
class Wait:
    """Awaits every condition concurrently on `loop`.  Clock, random and the thread starter
    are the loop's / replaceable, so the unit tier can drive it without sleeping."""

    def __init__(self, loop, conditions, log, attempt_timeout=ATTEMPT_TIMEOUT, base=BACKOFF_BASE,
                 cap=BACKOFF_CAP, random=_random.random, progress_every=PROGRESS_EVERY,
                 start_thread=None):
        self.loop = loop
        self.conditions = conditions
        self.log = log
        self.attempt_timeout = attempt_timeout
        self.base, self.cap, self.random = base, cap, random
        self.progress_every = progress_every
        self.start_thread = start_thread or self._thread
        self.failure = None  # a Skip or ShimError an attempt raised: ends the wait
        self.started = None
        self.closed = False
        self._timers = []

    @property
    def finished(self) -> bool:
        return self.failure is not None or all(c.ready for c in self.conditions)

    def pending(self) -> "list[Condition]":
        return [c for c in self.conditions if not c.ready]

    def begin(self) -> None:
        self.started = self.loop.time()
        for c in self.conditions:
            if hasattr(c.probe, "prepare"):
                c.probe.prepare()
        self.log("info", "wait for " + ", ".join(c.shown for c in self.conditions))
        for c in self.conditions:
            self._attempt(c)
        self._later(self.progress_every, self._progress)

    def close(self) -> None:
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def backoff(self, attempts: int) -> float:
        delay = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return delay / 2 + self.random() * delay / 2

    # -- one condition's attempts ---------------------------------------------------------
    def _attempt(self, c) -> None:
        if self.closed or c.ready:
            return
        if c.inflight:  # the last attempt timed out but its thread still runs: one at a time
            c.retry_when_done = True
            return
        c.inflight, c.retry_when_done = True, False
        c.generation += 1
        c.attempts += 1
        generation = c.generation
        self._later(self.attempt_timeout, lambda: self._timed_out(c, generation))
        self.start_thread(lambda: c.probe(self.attempt_timeout),
                          lambda err: self._done(c, generation, err))

    def _done(self, c, generation, err) -> None:
        c.inflight = False
        if self.closed:
            return
        if generation != c.generation:  # that attempt already counted as timed out
            if c.retry_when_done:
                self._attempt(c)
            return
        if err is None:
            c.ready, c.ready_after = True, self.loop.time() - self.started
            self.log("info", f"wait for {c.shown}: ready after {c.ready_after:.1f}s "
                             f"({c.attempts} attempt{'s' if c.attempts != 1 else ''})")
            return
        if isinstance(err, NotReady):
            c.cause = err.cause
            self._later(self.backoff(c.attempts), lambda: self._attempt(c))
            return
        self.failure = err if isinstance(err, Exception) else RuntimeError(str(err))

    def _timed_out(self, c, generation) -> None:
        if self.closed or generation != c.generation or not c.inflight:
            return
        c.generation += 1  # its answer, if it ever comes, is ignored
        c.cause = f"no answer within {self.attempt_timeout:g}s"
        self._later(self.backoff(c.attempts), lambda: self._attempt(c))

    def _progress(self) -> None:
        pending = self.pending()
        if pending and not self.closed:
            elapsed = self.loop.time() - self.started
            self.log("info", f"wait for: {len(pending)} pending after {elapsed:.0f}s: " +
                     ", ".join(f"{c.shown} ({c.cause})" for c in pending))
            self._later(self.progress_every, self._progress)

    def _later(self, delay, callback) -> None:
        self._timers.append(self.loop.call_later(delay, callback))
        if len(self._timers) > 64:  # keep the list short over a long wait
            self._timers = [t for t in self._timers if not t.cancelled]

    def _thread(self, fn, done) -> None:
        """Run fn() on a daemon thread; done(error or None) on the loop's thread."""
        loop = self.loop
        loop.enable_threads()

        def work() -> None:
            try:
                fn()
                err = None
            except BaseException as caught:  # handed to the loop's thread, never lost
                err = caught
            if self.closed:
                return  # the wait is over: nobody listens (and the loop may be closed)
            try:
                loop.call_soon_threadsafe(lambda: done(err))
            except (RuntimeError, OSError):
                pass

        threading.Thread(target=work, daemon=True, name="shim-wait-for").start()


def wait(resident: "Resident", conditions: "list[Condition]", timeout: "float | None",
         log: "Callable[[str, str], object]", deadline: "float | None" = None) -> None:
    """Return when every condition is ready.  Raises Skip, or ShimError (timeout, stop signal).

    `timeout` is --wait-timeout as given (for the message); `deadline` (loop time) what is
    left of it after the wait files, when they came first.
    """
    if not conditions:
        return
    waiter = Wait(resident.loop, conditions, log)
    if deadline is None and timeout is not None:
        deadline = resident.loop.time() + timeout
    try:
        waiter.begin()
        resident.wait_until(lambda: waiter.finished, deadline)
    finally:
        waiter.close()
    sig = resident.signals.stop_signal
    if sig is not None:
        raise ShimError("wait for", ", ".join(c.shown for c in waiter.pending()),
                        f"interrupted by signal {sig}", "", reason=REASON_INTERRUPTED,
                        code=128 + sig)
    if waiter.failure is not None:
        raise waiter.failure
    pending = waiter.pending()
    if pending:
        raise ShimError("wait for", ", ".join(c.shown for c in pending),
                        f"not ready after {timeout:g}s (" +
                        "; ".join(c.cause for c in pending) + ")",
                        "start the dependency or check its address, or raise --wait-timeout",
                        reason=REASON_WAIT_TIMEOUT)
