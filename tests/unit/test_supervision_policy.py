"""The supervision state machine as scenario tables, driven by fakes (no processes, no sleeping).

A scenario is a list of events at fake times; the recorded sends and the final
state/reason are compared with what tini/Tekton-style supervision must do.
"""

import signal

import pytest

from shim.errors import REASON_CANCELLED, REASON_EXITED, REASON_SIGNALED, REASON_TIMEOUT
from shim.proc.reaper import Exit, Reaper
from shim.proc.supervise import EXITED, RUNNING, TERMINATING, Supervisor

TERM, KILL, QUIT, INT, HUP = (signal.SIGTERM, signal.SIGKILL, signal.SIGQUIT, signal.SIGINT,
                              signal.SIGHUP)
PID = 4242


class FakeTimer:
    def __init__(self, when, callback):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self):
        self.cancelled = True


class FakeLoop:
    """Timers on a manual clock; `advance(t)` runs what is due, in order."""

    def __init__(self):
        self.now = 0.0
        self.timers = []

    def time(self):
        return self.now

    def call_later(self, delay, callback):
        timer = FakeTimer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, to):
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.when <= to),
                         key=lambda t: t.when)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = to


class Recorder:
    def __init__(self):
        self.sent = []

    def __call__(self, pid, sig, group):
        self.sent.append((self.at(), sig, group))


def make(timeout=None, grace=10.0, rewrite=None, cancel_file=None, group=False, files=()):
    loop = FakeLoop()
    rec = Recorder()
    rec.at = loop.time
    present = set(files)
    sup = Supervisor(loop, rewrite=rewrite, group=group, grace=grace, timeout=timeout,
                     cancel_file=cancel_file, poll_interval=0.5, send=rec,
                     exists=lambda p: p in present)
    return loop, rec, sup, present


def run_scenario(events, **kw):
    """events: (time, action, arg): 'signal' n | 'exit' status | 'file' path | 'end' reason."""
    loop, rec, sup, present = make(**kw)
    sup.start(PID)
    for at, action, arg in events:
        loop.advance(at)
        if action == "signal":
            sup.on_signal(arg)
        elif action == "exit":
            sup.on_exit(Exit.from_status(arg))
        elif action == "file":
            present.add(arg)
        elif action == "end":
            sup.end(arg)
    return rec.sent, sup


def _killed(sig):
    return sig  # wait status of a process killed by `sig`


def _exited(code):
    return code << 8


SCENARIOS = [
    # name, events, options, expected sends [(time, sig)], reason, code
    ("plain exit passes through", [(1, "exit", _exited(3))], {}, [], REASON_EXITED, 3),
    ("signal forwarded as is", [(1, "signal", HUP), (2, "exit", _exited(0))], {},
     [(1, HUP)], REASON_EXITED, 0),
    ("signal rewritten", [(1, "signal", TERM), (2, "exit", _killed(QUIT))],
     {"rewrite": {TERM: QUIT}}, [(1, QUIT)], REASON_SIGNALED, 128 + QUIT),
    ("timeout -> TERM -> grace -> KILL", [(100, "exit", _killed(KILL))],
     {"timeout": 5, "grace": 2}, [(5, TERM), (7, KILL)], REASON_TIMEOUT, 128 + KILL),
    ("timeout, exits within grace: no KILL", [(6, "exit", _killed(TERM)), (100, "none", None)],
     {"timeout": 5, "grace": 2}, [(5, TERM)], REASON_TIMEOUT, 128 + TERM),
    ("timeout TERM is rewritten too", [(6, "exit", _exited(0))],
     {"timeout": 5, "grace": 2, "rewrite": {TERM: QUIT}}, [(5, QUIT)], REASON_TIMEOUT, 0),
    ("timeout 0 means none", [(1000, "exit", _exited(0))], {"timeout": 0}, [], REASON_EXITED, 0),
    ("cancel file -> TERM at next poll", [(3.2, "file", "/c"), (4.5, "exit", _killed(TERM))],
     {"cancel_file": "/c", "grace": 2}, [(3.5, TERM)], REASON_CANCELLED, 128 + TERM),
    ("cancel during grace: no second TERM", [(5.2, "file", "/c"), (100, "exit", _killed(KILL))],
     {"timeout": 5, "grace": 2, "cancel_file": "/c"}, [(5, TERM), (7, KILL)], REASON_TIMEOUT,
     128 + KILL),
    ("signal during grace still forwarded", [(6, "signal", INT), (6.5, "exit", _killed(INT))],
     {"timeout": 5, "grace": 2}, [(5, TERM), (6, INT)], REASON_TIMEOUT, 128 + INT),
    ("end(reason) from another source", [(1, "end", "heartbeat-lost"), (2, "exit", _killed(TERM))],
     {}, [(1, TERM)], "heartbeat-lost", 128 + TERM),
    ("end twice sends once", [(1, "end", "heartbeat-lost"), (1.5, "end", REASON_TIMEOUT),
                              (20, "exit", _killed(KILL))],
     {"grace": 10}, [(1, TERM), (11, KILL)], "heartbeat-lost", 128 + KILL),
    ("nothing forwarded after exit", [(1, "exit", _exited(0)), (2, "signal", TERM)], {},
     [], REASON_EXITED, 0),
    ("timers cancelled by exit", [(1, "exit", _exited(0)), (100, "none", None)],
     {"timeout": 5, "grace": 2}, [], REASON_EXITED, 0),
]


@pytest.mark.parametrize("name,events,opts,sends,reason,code", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_scenario(name, events, opts, sends, reason, code):
    sent, sup = run_scenario(events, **opts)
    assert [(t, s) for t, s, _ in sent] == sends
    assert sup.state == EXITED and sup.done
    assert sup.result.reason == reason and sup.result.code == code


def test_group_flag_reaches_every_send():
    sent, _ = run_scenario([(1, "signal", HUP), (200, "exit", _killed(KILL))],
                           timeout=5, grace=2, group=True)
    assert [g for _, _, g in sent] == [True, True, True]


def test_states_in_order():
    loop, rec, sup, _ = make(timeout=5, grace=2)
    assert sup.state is None
    sup.start(PID)
    assert sup.state == RUNNING
    loop.advance(5)
    assert sup.state == TERMINATING
    sup.on_exit(Exit.from_status(_killed(TERM)))
    assert sup.state == EXITED and not [t for t in loop.timers if not t.cancelled]


def test_reaper_hands_status_to_the_watcher_and_reaps_orphans():
    statuses = [(77, _exited(0)), (PID, _exited(5)), (0, 0)]
    got = []
    reaper = Reaper(waitpid=lambda pid, flags: statuses.pop(0))
    reaper.watch(PID, got.append)
    reaper.reap()
    assert [e.code for e in got] == [5] and reaper.reaped == 2


def test_reaper_without_children_returns():
    def waitpid(pid, flags):
        raise ChildProcessError

    reaper = Reaper(waitpid=waitpid)
    reaper.reap()
    assert reaper.reaped == 0
