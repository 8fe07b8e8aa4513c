"""One HTTP request, blocking, for a worker thread: heartbeat GET, status and report POST,
the http(s) log sink.

A thin adapter over shim.net.http's Client (proxies, the shared trust store, keep-alive,
size caps): the callers here own their retry policy (the sink's backoff, the heartbeat's
failure count), so every request is one attempt, and a transport failure is an OSError
like any other I/O failure of a sink.
"""

import threading

READ_LIMIT = 1 << 20  # answers we read are small: a health check, an ingest acknowledgement


class HttpError(OSError):
    """A transport failure (no usable response): worth retrying later."""


_client = None
_lock = threading.Lock()


def request(method: str, url: str, body: "bytes | None" = None, headers: "dict[str, str] | None" = None,
            timeout: float = 5.0) -> "tuple[int, bytes]":
    """(status, body).  Raises HttpError (an OSError) when no response came."""
    from shim.net.http import NO_RETRY, HttpError as TransportError

    try:
        response = _shared().request(method, url, headers=dict(headers or {}), body=body,
                                     timeout=timeout, retry=NO_RETRY)
    except TransportError as err:
        raise HttpError(str(err.cause)) from None
    return response.status, response.body


def _shared():
    """One pooled client for the process (thread-safe), made on first use."""
    global _client
    with _lock:
        if _client is None:
            from shim.net.http import Client

            _client = Client(max_bytes=READ_LIMIT)
        return _client
