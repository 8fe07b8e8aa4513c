"""shim.loop, the supervisor's one event loop: timers, fd readiness, signalfd, pidfd,
cross-thread wake-ups, cancellation and ordering.

Time is a fake clock wherever a timer is involved, so nothing here sleeps: a timer
is "due" because the test moved the clock, and `run_once` then polls with a zero
timeout.  Descriptors are real (pipes, a signalfd, a pidfd): they are the loop's
whole point and cost microseconds.
"""

import os
import signal
import socket
import subprocess
import threading

import pytest

from shim.loop import Loop
from shim.proc import native


class FakeClock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def loop(clock):
    lp = Loop(clock=clock)
    yield lp
    lp.close()


# -- timers -------------------------------------------------------------------------------

def test_timers_run_in_time_order_and_ties_in_scheduling_order(loop, clock):
    ran = []
    loop.call_later(2, lambda: ran.append("b"))
    loop.call_later(1, lambda: ran.append("a"))
    loop.call_later(2, lambda: ran.append("c"))  # same time as b: after it
    loop.call_at(clock.now + 3, lambda: ran.append("d"))
    clock.now += 10
    loop.run_once()
    assert ran == ["a", "b", "c", "d"]


def test_a_timer_does_not_run_before_its_time(loop, clock):
    ran = []
    loop.call_later(5, lambda: ran.append("late"))
    clock.now += 4.999
    loop.run_once(deadline=clock.now)  # deadline now: poll returns at once
    assert ran == []
    clock.now += 0.001
    loop.run_once()
    assert ran == ["late"]


def test_negative_delay_is_due_now(loop, clock):
    ran = []
    loop.call_later(-3, lambda: ran.append(1))
    loop.run_once()
    assert ran == [1]


def test_cancelled_timer_never_runs_and_is_pruned(loop, clock):
    ran = []
    t = loop.call_later(1, lambda: ran.append("cancelled"))
    loop.call_later(2, lambda: ran.append("kept"))
    t.cancel()
    # The cancelled head is pruned: the next wait is for the kept timer, not the cancelled one.
    assert loop._timeout(None) == pytest.approx(2)
    clock.now += 5
    loop.run_once()
    assert ran == ["kept"]


def test_cancelled_timer_behind_the_head_never_runs(loop, clock):
    ran = []
    loop.call_later(1, lambda: ran.append("kept"))
    loop.call_later(2, lambda: ran.append("cancelled")).cancel()
    clock.now += 5
    loop.run_once()
    assert ran == ["kept"]


def test_timer_scheduled_by_a_timer_runs_on_a_later_iteration_when_due(loop, clock):
    ran = []

    def first():
        ran.append("first")
        loop.call_later(1, lambda: ran.append("second"))

    loop.call_later(0, first)
    loop.run_once()
    assert ran == ["first"]
    clock.now += 1
    loop.run_once()
    assert ran == ["first", "second"]


def test_no_source_and_no_deadline_waits_forever(loop):
    assert loop._timeout(None) == -1


def test_ready_callbacks_make_the_poll_non_blocking(loop, clock):
    loop.call_later(1000, lambda: None)
    loop.call_soon(lambda: None)
    assert loop._timeout(None) == 0


# -- call_soon / ordering --------------------------------------------------------------

def test_call_soon_runs_in_order_before_due_timers(loop, clock):
    ran = []
    loop.call_later(0, lambda: ran.append("timer"))
    loop.call_soon(lambda: ran.append("soon-1"))
    loop.call_soon(lambda: ran.append("soon-2"))
    loop.run_once()
    assert ran == ["soon-1", "soon-2", "timer"]


def test_call_soon_from_a_timer_runs_in_the_same_iteration(loop, clock):
    ran = []
    loop.call_later(0, lambda: loop.call_soon(lambda: ran.append("from-timer")))
    loop.run_once()
    assert ran == ["from-timer"]


# -- descriptors ---------------------------------------------------------------------------

def test_reader_runs_when_data_arrives_and_not_after_removal(loop):
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        got = []
        loop.add_reader(r, lambda: got.append(os.read(r, 100)))
        os.write(w, b"x")
        loop.run_once(deadline=loop.time())
        assert got == [b"x"]
        loop.remove_reader(r)
        os.write(w, b"y")
        loop.run_once(deadline=loop.time())
        assert got == [b"x"]
    finally:
        os.close(r)
        os.close(w)


def test_reader_sees_hang_up(loop):
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        got = []
        loop.add_reader(r, lambda: got.append(os.read(r, 100)))
        os.close(w)
        w = None
        loop.run_once(deadline=loop.time())
        assert got == [b""]  # EOF delivered as readiness
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_writer_and_reader_on_one_fd_are_independent(loop):
    s1, s2 = socket.socketpair()
    try:
        events = []
        loop.add_writer(s1.fileno(), lambda: events.append("w"))
        loop.add_reader(s1.fileno(), lambda: events.append("r"))
        loop.run_once(deadline=loop.time())
        assert events == ["w"]  # writable at once, nothing to read
        loop.remove_writer(s1.fileno())
        s2.send(b"z")
        events.clear()
        loop.run_once(deadline=loop.time())
        assert events == ["r"]  # the reader stayed registered
    finally:
        s1.close()
        s2.close()


def test_an_fd_closed_behind_the_loops_back_is_not_an_error(loop):
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    os.close(r)
    os.close(w)
    loop.remove_reader(r)  # epoll already dropped it: no exception


# -- run_until ---------------------------------------------------------------------------

def test_run_until_returns_true_when_the_predicate_holds(loop, clock):
    state = {"done": False}
    loop.call_later(0, lambda: state.update(done=True))
    assert loop.run_until(lambda: state["done"]) is True


def test_run_until_gives_up_at_the_deadline(loop, clock):
    ticks = []

    def tick():
        ticks.append(clock.now)
        clock.now += 1  # the fake clock moves as work is done
        loop.call_later(0, tick)

    loop.call_later(0, tick)
    assert loop.run_until(lambda: False, deadline=clock.now + 3) is False
    assert 1 <= len(ticks) <= 4


def test_stop_ends_run_until(loop, clock):
    loop.call_later(0, loop.stop)
    assert loop.run_until(lambda: False) is False


# -- threads ---------------------------------------------------------------------------------

def test_call_soon_threadsafe_needs_enable_threads(loop):
    with pytest.raises(RuntimeError, match="enable_threads"):
        loop.call_soon_threadsafe(lambda: None)


def test_call_soon_threadsafe_wakes_a_blocked_poll(loop):
    loop.enable_threads()
    got = []
    started = threading.Event()

    def other():
        started.wait()
        loop.call_soon_threadsafe(lambda: got.append(threading.get_ident()))

    thread = threading.Thread(target=other)
    thread.start()
    started.set()
    # No timers and no deadline: only the wake-up pipe can end this wait.
    assert loop.run_until(lambda: bool(got)) is True
    thread.join()
    assert got == [threading.get_ident()]  # ran on the loop's thread


def test_run_in_thread_hands_back_result_and_error(loop):
    results = []
    loop.run_in_thread(lambda: 42, lambda r, e: results.append((r, e)))
    loop.run_until(lambda: len(results) == 1)
    loop.run_in_thread(lambda: 1 / 0, lambda r, e: results.append((r, type(e))))
    loop.run_until(lambda: len(results) == 2)
    assert results == [(42, None), (None, ZeroDivisionError)]


# -- kernel sources: signalfd and pidfd ------------------------------------------------------

def test_signalfd_delivers_a_blocked_signal_as_an_event(loop):
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    fd = native.signalfd([signal.SIGUSR2])
    try:
        got = []
        loop.add_reader(fd, lambda: got.extend(native.read_signals(fd)))
        # To this thread, where it is blocked: a process-directed kill() could be delivered to
        # another thread of the test process (a daemon thread left by an earlier test), where
        # SIGUSR2's default action would end the whole run.
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)
        loop.run_until(lambda: bool(got))
        signo, _code, pid = got[0]
        assert (signo, pid) == (signal.SIGUSR2, os.getpid())
    finally:
        loop.remove_reader(fd)
        os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def test_pidfd_becomes_readable_when_the_child_exits(loop):
    child = subprocess.Popen(["/bin/sh", "-c", "read x"], stdin=subprocess.PIPE)
    pidfd = os.pidfd_open(child.pid)
    try:
        exited = []
        loop.add_reader(pidfd, lambda: exited.append(True))
        loop.run_once(deadline=loop.time())
        assert exited == []  # still running
        child.stdin.close()  # EOF: `read` returns, the shell exits
        loop.run_until(lambda: bool(exited))
        assert child.wait() == 1
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
