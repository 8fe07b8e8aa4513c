"""The common part of every sink: bounded buffer, writer thread, backoff, counters.

Overflow policy (`--log-overflow`, `--log-block-limit`), as Vector's `when_full: block`
and Fluent Bit's paused inputs do it:

* `block` (the default): a sink whose buffer is full while it is *healthy* holds the
  delegate's output (capture stops reading the pipes, so the delegate's writes wait,
  as they would on a slow terminal).  Nothing is lost to a burst.  A sink holds at most
  `block_limit` seconds per congestion episode (full until it drains to half): one
  that stays slower than the delegate for longer is *degraded* and drops (counted)
  until it has drained to half its buffer, then holds again.
* A sink that is *down* (its last connect or delivery failed) never holds: its buffer
  keeps the newest records up to the limit, and what does not fit is dropped and
  counted, so an outage never stalls the delegate.
* `drop`: never hold; a full buffer drops (counted).

`put` never blocks the loop: the caller asks `holding()` after each put and pauses
its readers; the writer thread calls `on_change` (set by the caller) when room
appears or the sink's state changes.
"""

import threading
import time
from collections import deque

BLOCK_LIMIT = 5.0  # default --log-block-limit: longest one congestion episode may hold output
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
BATCH_BYTES = 256 << 10  # one delivery: small enough that joining it costs little memory


class Sink:
    """Subclasses implement `connect()`, `deliver(records)` and `disconnect()`.

    `deliver` raises OSError on failure; it may record progress in `self.done`
    (records of the batch already delivered) so a retry does not repeat them.
    """

    kind = "sink"

    def __init__(self, url, limit=4 << 20, overflow="block", block_limit=BLOCK_LIMIT, log=None,
                 clock=time.monotonic):
        from shim.streams.sinks import safe_name

        self.name = safe_name(url)
        self.limit = limit
        self.overflow = overflow
        self.block_limit = block_limit
        self.log = log or (lambda level, message: None)
        self.clock = clock
        self.records = self.bytes = self.dropped = self.restarts = 0
        self.held_s = 0.0  # time this sink held the delegate's output (counted by capture)
        self.size = 0  # bytes held: queued and in flight
        self.done = 0
        self.down = False  # the last connect or delivery failed; no success since
        self.on_change = None  # called (from any thread) when room appears or `down` changes
        self.full_since = None  # monotonic time the buffer filled; None once drained to half
        self._queue: deque = deque()  # (records, size) as put: the writer takes whole lists
        self._cond = threading.Condition()
        self._closing = self._abort = False
        self._degraded = False  # held too long: drop until the buffer drains to half
        self._connected = False
        self._warned = set()
        self._thread = None
        self._wake = threading.Event()

    # -- the loop's side ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="shim-sink")
        self._thread.start()

    def put(self, records: "list[bytes]", size: int) -> bool:
        """Queue encoded records (never waits).  A full buffer takes them while the sink
        holds (healthy, block mode: the caller pauses its input after this put); else the
        records are dropped and counted.  False when dropped."""
        with self._cond:
            # An empty buffer takes any one put: a chunk's records may exceed a small limit.
            if self.size and self.size + size > self.limit and not self._may_hold():
                self.dropped += len(records)
                return False
            self._queue.append((records, size))
            self.size += size
            if self.size >= self.limit and self.full_since is None:
                self.full_since = self.clock()
            self._cond.notify()
            return True

    def _may_hold(self):
        return self.overflow == "block" and not (self.down or self._degraded or self._abort)

    def holding(self) -> bool:
        """True while this sink wants the delegate's output held (full, healthy, block)."""
        with self._cond:
            return self.size >= self.limit and self._may_hold()

    def degrade(self) -> None:
        """Held longer than block_limit: drop (counted) until drained to half the buffer."""
        with self._cond:
            if not self._degraded:
                self._degraded = True
                if "slow" not in self._warned:
                    self._warned.add("slow")
                    self.log("warn", f"log sink {self.name}: slower than the delegate for more "
                                     f"than {self.block_limit:g}s; dropping records (counted) "
                                     "until it catches up (raise --log-block-limit or "
                                     "--log-buffer, or fix the sink)")

    def close(self, deadline: float) -> None:
        """Deliver what is queued until `deadline` (monotonic); then give up and count it dropped."""
        self.on_change = None  # nobody waits for room any more (the loop may close before us)
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
            self._inflight = 0
            self.dropped += lost
        self.disconnect()

    def counters(self) -> "dict[str, float]":
        return {"records": self.records, "bytes": self.bytes, "dropped": self.dropped,
                "restarts": self.restarts, "held_ms": round(self.held_s * 1000, 3)}

    # -- the writer thread ---------------------------------------------------------------
    _inflight = 0
    _connects = 0

    def _notify(self) -> None:
        callback = self.on_change
        if callback is not None:
            try:
                callback()
            except (RuntimeError, OSError):
                pass  # the loop closed while this thread finished a last delivery

    def _set_down(self, down) -> None:
        if down != self.down:
            self.down = down
            self._notify()

    def _run(self) -> None:
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
                before = self.done
                try:
                    if not self._connected:
                        self.connect()
                        self._connects += 1
                        self.restarts = self._connects - 1
                        self._connected = True
                    self.deliver(batch)
                    backoff = BACKOFF_FIRST
                    self._delivering()
                except OSError as err:
                    if self.done > before:
                        self._delivering()  # it took some: it was up, then failed
                    self._connected = False
                    self.disconnect()
                    if "down" not in self._warned:
                        self._warned.add("down")
                        self.log("warn", f"log sink {self.name}: {describe(err)}; retrying with "
                                         "backoff, records are held up to the buffer limit")
                    self._set_down(True)
                    self._wake.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
            size = sum(map(len, batch[:self.done]))
            with self._cond:
                self.records += self.done
                self.bytes += size
                self._inflight = len(batch) - self.done
                self.size -= batch_size
                if self.size <= self.limit // 2:
                    self.full_since = None
                    self._degraded = False
                self._cond.notify_all()
            self._notify()

    def _delivering(self) -> None:
        """A delivery succeeded: the sink is up (said once per outage, not per retry)."""
        if "down" in self._warned:
            self._warned.discard("down")
            self.log("warn", f"log sink {self.name}: delivering again")
        self._set_down(False)

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
    def connect(self) -> None:
        pass

    def deliver(self, batch: "list[bytes]") -> None:
        raise NotImplementedError

    def disconnect(self) -> None:
        pass

    def interrupt(self) -> None:
        """Unblock a delivery stuck in a system call (close time only)."""
        self.disconnect()


def describe(err: BaseException) -> str:
    from shim.util.text import oserror

    return oserror(err)
