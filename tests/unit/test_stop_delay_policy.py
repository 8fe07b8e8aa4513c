"""--stop-delay in the supervision state machine, as a scenario table on a fake clock: the
first stop signal is held for the delay, a second forwards at once, other signals pass,
rewrites apply to the held one, and the record counts what happened."""

import signal

import pytest

from shim.proc.reaper import Exit
from shim.proc.supervise import Supervisor

TERM, INT, QUIT, HUP, USR1 = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                              signal.SIGUSR1)
PID = 4242


class FakeTimer:
    def __init__(self, when, callback):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self):
        self.cancelled = True


class FakeLoop:
    def __init__(self):
        self.now, self.timers = 0.0, []

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
            self.timers.remove(due[0])
            self.now = due[0].when
            due[0].callback()
        self.now = to


def run(events, stop_delay=15.0, rewrite=None):
    loop, sent = FakeLoop(), []
    sup = Supervisor(loop, rewrite=rewrite, grace=10.0, stop_delay=stop_delay,
                     send=lambda pid, sig, group: sent.append((loop.time(), sig)))
    sup.start(PID)
    for at, action, arg in events:
        loop.advance(at)
        if action == "signal":
            sup.on_signal(arg)
        elif action == "exit":
            sup.on_exit(Exit.from_status(arg))
    return sent, sup


SCENARIOS = [
    # name, events, options, sends [(time, sig)], counters (delayed, skipped, held_s)
    ("TERM held for the delay", [(1, "signal", TERM), (20, "exit", 0)], {},
     [(16, TERM)], (1, 0, 15.0)),
    ("a second TERM forwards at once", [(1, "signal", TERM), (4, "signal", TERM),
                                        (10, "exit", 0)], {},
     [(4, TERM)], (1, 1, 3.0)),
    ("INT and QUIT are stop signals too", [(1, "signal", QUIT), (20, "exit", 0)], {},
     [(16, QUIT)], (1, 0, 15.0)),
    ("a second, different stop signal is the one forwarded", [(1, "signal", TERM),
                                                              (2, "signal", INT),
                                                              (10, "exit", 0)], {},
     [(2, INT)], (1, 1, 1.0)),
    ("HUP and USR1 pass at once, the hold goes on", [(1, "signal", TERM), (2, "signal", HUP),
                                                    (3, "signal", USR1), (20, "exit", 0)], {},
     [(2, HUP), (3, USR1), (16, TERM)], (1, 0, 15.0)),
    ("after the delay, another TERM is forwarded as usual",
     [(1, "signal", TERM), (20, "signal", TERM), (22, "exit", 0)], {},
     [(16, TERM), (20, TERM)], (1, 0, 15.0)),
    ("the held signal is rewritten when it goes", [(1, "signal", TERM), (20, "exit", 0)],
     {"rewrite": {TERM: QUIT}}, [(16, QUIT)], (1, 0, 15.0)),
    ("the delegate exits during the delay: nothing sent", [(1, "signal", TERM), (5, "exit", 0),
                                                          (100, "none", None)], {},
     [], (1, 0, 0.0)),
    ("still running a grace after the held signal went: KILL",
     [(1, "signal", TERM), (100, "exit", 9)], {}, [(16, TERM), (26, signal.SIGKILL)],
     (1, 0, 15.0)),
    ("skipped, then the grace: KILL", [(1, "signal", TERM), (2, "signal", TERM),
                                       (100, "exit", 9)], {},
     [(2, TERM), (12, signal.SIGKILL)], (1, 1, 1.0)),
    ("no delay configured: forwarded at once", [(1, "signal", TERM), (30, "exit", 0)],
     {"stop_delay": None}, [(1, TERM)], (0, 0, 0.0)),
]


@pytest.mark.parametrize("name,events,opts,sends,counters", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_scenario(name, events, opts, sends, counters):
    sent, sup = run(events, **opts)
    assert sent == sends
    assert (sup.delay["delayed"], sup.delay["skipped"], sup.delay["held_s"]) == counters
