"""Heartbeat and status: the run dies when the orchestrator is gone (Airbyte's heartbeat).

Every `--heartbeat-interval` a probe runs on a worker thread: an http(s) GET that
must answer 2xx, or a TCP connect to `tcp://HOST:PORT` that must be accepted.
After `--heartbeat-failures` consecutive failures the delegate is ended through
its Supervisor (TERM, grace, KILL): reason heartbeat-lost, exit 116.
`--status-url` receives a small JSON status by POST at the same interval.
"""

import os
import socket
import time
from urllib.parse import urlsplit

from shim.errors import REASON_HEARTBEAT_LOST, usage_error
from shim.service import Service
from shim.util.text import oserror

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from shim.loop import Loop
    from shim.proc.reaper import Exit
    from shim.proc.supervise import Supervisor
    from shim.service import Start

PROBE_TIMEOUT = 5.0


def check_url(url: str, flag: str, schemes: "tuple[str, ...]") -> "SplitResult":
    from shim.net.url import URLError, split
    try:
        parts, port = split(url)
    except URLError as err:
        raise usage_error(f"option {flag}", f"cannot read URL: {err}",
                          "write http(s)://HOST/PATH or tcp://HOST:PORT") from None
    if parts.scheme not in schemes or not parts.hostname or (parts.scheme == "tcp" and not port):
        raise usage_error(f"option {flag}", "unsupported URL scheme or missing host/port",
                          "write " + " or ".join(f"{s}://HOST" + (":PORT" if s == "tcp" else "/PATH")
                                                 for s in schemes))
    return parts


def probe(url: str, timeout: float) -> None:
    """Raise OSError unless the endpoint is alive."""
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
        return
    from shim.telemetry.httpcall import request

    status, _ = request("GET", url, timeout=timeout)
    if not 200 <= status < 300:
        raise OSError(f"answered {status}")


class Heartbeat(Service):
    """A run service: probes and status posts on the loop's timers, the I/O on worker threads."""

    def __init__(self, url=None, interval=10.0, failures=3, status_url=None, log=None,
                 probe=probe, wall=time.time):
        if url:
            check_url(url, "--heartbeat", ("http", "https", "tcp"))
        if status_url:
            check_url(status_url, "--status-url", ("http", "https"))
        self.url, self.status_url = url, status_url
        self.interval = max(interval, 0.01)
        self.failures_allowed = max(1, failures)
        self.log = log or (lambda level, message: None)
        self.probe = probe
        self.wall = wall
        self.failures = 0
        self.probes = self.failed = 0
        self.loop: "Loop" = None  # type: ignore[assignment]  # set by start()
        self.supervisor = self.timer = None
        self.pid = None
        self.in_flight = False
        self.started = wall()
        self.last_exit = None
        self.phase = "starting"

    def start(self, ctx: "Start") -> None:
        self.loop = ctx.resident.loop
        self.started = ctx.started

    def delegate_started(self, pid: "int | None", supervisor: "Supervisor | None") -> None:
        self.pid, self.supervisor, self.phase = pid, supervisor, "running"
        self.post_status()
        self.timer = self.loop.call_later(self.interval, self._tick)

    def delegate_exited(self, result: "Exit") -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.phase, self.last_exit = "exited", result.code

    def stop(self) -> dict:
        counters = {"heartbeat": self.counters()}
        if self.status_url:  # the final status, synchronously: the run is ending
            self._post(self._status(), timeout=min(2.0, self.interval))
        return counters

    def _tick(self) -> None:
        self.timer = self.loop.call_later(self.interval, self._tick)
        self.post_status()
        if self.url and not self.in_flight:
            self.in_flight = True
            timeout = min(PROBE_TIMEOUT, self.interval)
            self.loop.run_in_thread(lambda: self.probe(self.url, timeout), self._probed)

    def _probed(self, result, error) -> None:
        self.in_flight = False
        self.probes += 1
        if error is None:
            if self.failures:
                self.log("info", "heartbeat: the endpoint answers again")
            self.failures = 0
            return
        self.failures += 1
        self.failed += 1
        cause = oserror(error) if isinstance(error, OSError) else type(error).__name__
        self.log("warn", f"heartbeat {_safe(self.url)}: {cause} "
                         f"({self.failures} of {self.failures_allowed})")
        if self.failures >= self.failures_allowed and self.supervisor is not None:
            self.log("error", f"heartbeat {_safe(self.url)}: lost; terminating the delegate")
            self.supervisor.end(REASON_HEARTBEAT_LOST)

    # -- status ------------------------------------------------------------------------
    def _status(self):
        return {"phase": self.phase, "uptime_s": round(self.wall() - self.started, 3),
                "pid": self.pid, "shim_pid": os.getpid(), "last_exit": self.last_exit,
                "heartbeat_failures": self.failures}

    def post_status(self) -> None:
        if self.status_url:
            status = self._status()
            self.loop.run_in_thread(lambda: self._post(status), lambda result, error: None)

    def _post(self, status, timeout=PROBE_TIMEOUT) -> None:
        from shim.telemetry.httpcall import request
        from shim.util import jsonio

        try:
            request("POST", self.status_url, jsonio.dumps(status),
                    {"Content-Type": "application/json"}, timeout=timeout)
        except OSError:
            pass  # the status is best effort; the heartbeat decides about liveness

    def counters(self) -> "dict[str, int]":
        return {"probes": self.probes, "failed": self.failed}


def _safe(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + parts.path
