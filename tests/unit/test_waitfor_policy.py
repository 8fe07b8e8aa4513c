"""The --wait-for scheduler (shim.run.waitfor.Wait) on a fake loop and fake threads: conditions
are attempted together, back off with jitter, one attempt at a time per condition, each
bounded (a late answer is ignored); and the URL parser's errors.  No sleeping."""

import heapq

import pytest

from shim.errors import ShimError
from shim.run import waitfor
from shim.run.waitfor import Condition, NotReady, Wait


class FakeLoop:
    def __init__(self):
        self.now = 0.0
        self.timers = []
        self.seq = 0

    def time(self):
        return self.now

    def call_later(self, delay, callback):
        self.seq += 1
        timer = FakeTimer(self.now + delay, self.seq, callback)
        heapq.heappush(self.timers, timer)
        return timer

    def advance(self, seconds):
        end = self.now + seconds
        while self.timers and self.timers[0].when <= end:
            timer = heapq.heappop(self.timers)
            self.now = timer.when
            if not timer.cancelled:
                timer.callback()
        self.now = end


class FakeTimer:
    def __init__(self, when, seq, callback):
        self.when, self.seq, self.callback, self.cancelled = when, seq, callback, False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return (self.when, self.seq) < (other.when, other.seq)


class Threads:
    """Records started attempts; the test decides when (and how) each one answers."""

    def __init__(self):
        self.pending = []  # (fn, done)

    def start(self, fn, done):
        self.pending.append((fn, done))

    def answer(self, index=0, err=None):
        fn, done = self.pending.pop(index)
        done(err)


def _wait(n=2, **kw):
    loop, threads = FakeLoop(), Threads()
    conditions = [Condition(f"tcp://h:{i}", "tcp", f"tcp://h:{i}", lambda t: None)
                  for i in range(n)]
    logged = []
    w = Wait(loop, conditions, lambda level, msg: logged.append((level, msg)),
             start_thread=threads.start, random=lambda: 0.5, **kw)
    w.begin()
    return w, loop, threads, logged


def test_conditions_are_attempted_together():
    w, loop, threads, logged = _wait(3)
    assert len(threads.pending) == 3  # all three at once, nobody waits for another
    assert logged[0] == ("info", "wait for tcp://h:0, tcp://h:1, tcp://h:2")
    for _ in range(3):
        threads.answer()
    assert w.finished and not w.pending()


def test_backoff_doubles_with_jitter_and_is_capped():
    w, loop, threads, _ = _wait(1, base=0.1, cap=2.0)
    got = [w.backoff(n) for n in (1, 2, 3)]
    assert got == pytest.approx([0.075, 0.15, 0.3])  # half fixed, half random
    assert w.backoff(20) == pytest.approx(1.5)  # capped: 2.0 * (1/2 + 0.5/2)
    w.random = lambda: 0.0
    assert w.backoff(1) == 0.05
    w.random = lambda: 0.999999
    assert w.backoff(1) < 0.1


def test_not_ready_is_retried_after_the_backoff():
    w, loop, threads, _ = _wait(1)
    threads.answer(err=NotReady("connection refused"))
    assert not threads.pending and w.conditions[0].cause == "connection refused"
    loop.advance(0.074)
    assert not threads.pending
    loop.advance(0.002)
    assert len(threads.pending) == 1 and w.conditions[0].attempts == 2
    threads.answer()
    assert w.finished


def test_an_attempt_is_bounded_and_its_late_answer_ignored():
    w, loop, threads, _ = _wait(1, attempt_timeout=5.0)
    loop.advance(5.0)  # the attempt timed out
    c = w.conditions[0]
    assert c.cause == "no answer within 5s"
    loop.advance(1.0)  # the retry is due, but the old thread still runs: no second thread
    assert len(threads.pending) == 1 and c.retry_when_done
    threads.answer()  # the late "ready" of the timed-out attempt does not count...
    assert not c.ready
    assert len(threads.pending) == 1  # ...and the deferred retry starts now
    threads.answer()
    assert c.ready and w.finished


def test_a_skip_or_setup_error_ends_the_wait():
    from shim.run.waiter import Skip

    w, loop, threads, _ = _wait(2)
    threads.answer(err=Skip("/x"))
    assert w.finished and isinstance(w.failure, Skip)


def test_progress_names_the_pending_conditions():
    w, loop, threads, logged = _wait(2, progress_every=5.0)
    threads.answer(0)  # tcp://h:0 ready
    threads.answer(0, NotReady("connection refused"))
    loop.advance(5.0)
    assert ("info", "wait for: 1 pending after 5s: tcp://h:1 (connection refused)") in logged


def test_nothing_runs_after_close():
    w, loop, threads, _ = _wait(1)
    w.close()
    threads.answer(err=NotReady("x"))
    loop.advance(60)
    assert not threads.pending


@pytest.mark.parametrize("url,cause", [
    ("ftp://h/x", "unknown URL scheme"), ("tcp://h", "no port"), ("tcp://:1", "no host"),
    ("h:1", "is not a URL"), ("file://h/x", "absolute"), ("dns://", "names no host"),
    ("http:///x", "no host"), ("http://h/?status=600", "invalid status"),
    ("tcp://h:99999", "cannot read"),
])
def test_bad_urls(url, cause):
    with pytest.raises(ShimError) as err:
        waitfor.parse(url, "--wait-for", {})
    assert err.value.code == 125 and cause in err.value.message()
    assert "--wait-for" in err.value.message()


def test_shown_urls_carry_no_credentials():
    assert waitfor.shown("http://u:p@h:8/x?token=t") == "http://h:8/x?..."
    assert waitfor.shown("http://h/x?status=503") == "http://h/x?status=503"
    assert waitfor.shown("tcp://[::1]:5") == "tcp://[::1]:5"


def test_status_parameter():
    c = waitfor.parse("http://h/health?status=2xx,503&x=1", "--wait-for", {})
    assert c.probe.url == "http://h/health?x=1"
    assert c.probe.accept(204) and c.probe.accept(503) and not c.probe.accept(500)
