"""The common part of every sink: bounded buffer, writer thread, backoff, counters."""

import threading
import time
from collections import deque

BLOCK_LIMIT = 0.1  # the longest a full sink may hold the delegate's output (--log-overflow block)
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
BATCH_BYTES = 256 << 10  # one delivery: small enough that joining it costs little memory


class Sink:
    """Subclasses implement `connect()`, `deliver(records)` and `disconnect()`.

    `deliver` raises OSError on failure; it may record progress in `self.done`
    (records of the batch already delivered) so a retry does not repeat them.
    """

    kind = "sink"

    def __init__(self, url, limit=4 << 20, overflow="drop", log=None, clock=time.monotonic):
        from shim.streams.sinks import safe_name

        self.name = safe_name(url)
        self.limit = limit
        self.overflow = overflow
        self.log = log or (lambda level, message: None)
        self.clock = clock
        self.records = self.bytes = self.dropped = self.restarts = 0
        self.size = 0  # bytes held: queued and in flight
        self.done = 0
        self._queue = deque()  # (records, size) as put: the writer takes whole lists
        self._cond = threading.Condition()
        self._closing = self._abort = False
        self._degraded = False  # block mode gave up waiting: drop until the buffer drains
        self._connected = False
        self._warned = set()
        self._thread = None
        self._wake = threading.Event()

    # -- the loop's side ---------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True, name="shim-sink")
        self._thread.start()

    def put(self, records, size):
        """Queue encoded records; drops (and counts) them if the buffer stays full."""
        with self._cond:
            # An empty buffer takes any one put: a chunk's records may exceed a small limit.
            if self.size and self.size + size > self.limit and not self._wait_for_room(size):
                self.dropped += len(records)
                return False
            self._queue.append((records, size))
            self.size += size
            self._cond.notify()
            return True

    def _wait_for_room(self, size):
        if self.overflow != "block" or self._degraded or self._closing:
            return False
        deadline = self.clock() + BLOCK_LIMIT
        while self.size and self.size + size > self.limit:
            left = deadline - self.clock()
            if left <= 0:
                self._degraded = True
                return False
            self._cond.wait(left)
        return True

    def close(self, deadline):
        """Deliver what is queued until `deadline` (monotonic); then give up and count it dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - self.clock()))
            if self._thread.is_alive():
                self._abort = True
                self._wake.set()
                self.interrupt()
                self._thread.join(0.5)
        with self._cond:  # whatever is still queued or in flight is lost: count it
            lost = sum(len(records) for records, _ in self._queue) + self._inflight
            self._queue.clear()
            self.dropped += lost
        self.disconnect()

    def counters(self):
        return {"records": self.records, "bytes": self.bytes, "dropped": self.dropped,
                "restarts": self.restarts}

    # -- the writer thread ---------------------------------------------------------------
    _inflight = 0
    _connects = 0

    def _run(self):
        backoff = BACKOFF_FIRST
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or self._abort:
                    return
                batch, batch_size = self._take()
                self._inflight = len(batch)
            self.done = 0
            while self.done < len(batch) and not self._abort:
                try:
                    if not self._connected:
                        self.connect()
                        self._connects += 1
                        self.restarts = self._connects - 1
                        self._connected = True
                        if "down" in self._warned:
                            self.log("warn", f"log sink {self.name}: delivering again")
                            self._warned.discard("down")
                    self.deliver(batch)
                    backoff = BACKOFF_FIRST
                except OSError as err:
                    self._connected = False
                    self.disconnect()
                    if "down" not in self._warned:
                        self._warned.add("down")
                        self.log("warn", f"log sink {self.name}: {describe(err)}; retrying with "
                                         "backoff, records are held up to the buffer limit")
                    self._wake.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
            size = sum(map(len, batch[:self.done]))
            with self._cond:
                self.records += self.done
                self.bytes += size
                self._inflight = len(batch) - self.done
                self.size -= batch_size
                if self._degraded and self.size <= self.limit // 2:
                    self._degraded = False
                self._cond.notify_all()

    def _take(self):
        records, size = self._queue.popleft()
        if self._queue and size < BATCH_BYTES:
            records = list(records)
            while self._queue and size < BATCH_BYTES:
                more, more_size = self._queue.popleft()
                records += more
                size += more_size
        return records, size

    # -- subclass hooks -----------------------------------------------------------------
    def connect(self):
        pass

    def deliver(self, batch):
        raise NotImplementedError

    def disconnect(self):
        pass

    def interrupt(self):
        """Unblock a delivery stuck in a system call (close time only)."""
        self.disconnect()


def describe(err):
    from shim.util.text import oserror

    return oserror(err)

