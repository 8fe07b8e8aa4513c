"""`http(s)://host/path`: NDJSON batches POSTed, gzip-compressed, with a bearer token read
from `token_file` for every request (so a rotated token is picked up), retried with backoff."""

import gzip as _gzip

from shim.streams.sinks.base import Sink, describe
from shim.telemetry.httpcall import HttpError, request

BATCH_BYTES = 1 << 20
TIMEOUT = 10.0


class HttpSink(Sink):
    kind = "http"

    def __init__(self, url, target, token_file=None, gzip=True, **common):
        super().__init__(url, **common)
        self.target, self.token_file, self.gzip = target, token_file, gzip

    def deliver(self, batch: "list[bytes]") -> None:
        while self.done < len(batch):
            end, size = self.done, 0
            while end < len(batch) and (end == self.done or size + len(batch[end]) <= BATCH_BYTES):
                size += len(batch[end])
                end += 1
            body = b"".join(batch[self.done:end])
            headers = {"Content-Type": "application/x-ndjson"}
            if self.gzip:
                body = _gzip.compress(body, compresslevel=1, mtime=0)
                headers["Content-Encoding"] = "gzip"
            token = self._token()
            if token:
                headers["Authorization"] = "Bearer " + token
            status, _ = request("POST", self.target, body, headers, timeout=TIMEOUT)
            if status == 429 or status >= 500 or status == 408:
                raise HttpError(f"the server answered {status}")
            if status >= 300:  # will never be accepted: drop this batch, count it, go on
                self.log("warn", f"log sink {self.name}: the server refused a batch ({status}); "
                                 f"{end - self.done} records dropped")
                self.dropped += end - self.done
                self.records -= end - self.done  # the base counts `done` as delivered
            self.done = end

    def _token(self):
        if not self.token_file:
            return None
        try:
            with open(self.token_file, "rb") as f:
                return f.read().decode("utf-8", "replace").strip()
        except OSError as err:
            raise HttpError(f"cannot read the token file ({describe(err)})") from None
