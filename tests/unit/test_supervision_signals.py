"""Issue 22's policy with recording fakes (no processes): a rewrite to 0 drops a signal,
shim's own ending still sends TERM, and job control stops shim once per stop."""

import signal

from shim.proc.signals import Signals
from shim.proc.supervise import CLD_STOPPED, Resident, Supervisor

PID = 4242


class FakeLoop:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now

    def call_later(self, delay, callback):
        return type("T", (), {"cancel": lambda self: None})()

    def add_reader(self, fd, cb):
        pass


class RecordingJobs:
    """A JobControl double: records what the supervisor asked, never really stops."""

    def __init__(self):
        from shim.proc.supervise import JobControl

        self.real = JobControl(foreground_group=False)
        self.stops, self.resumes = 0, 0

    def attach(self):
        def stop(forwarded=False):
            self.real.expect_child_stop = forwarded
            self.stops += 1

        def resumed(pid):
            self.real.expect_child_stop = False
            self.resumes += 1

        self.real.stop_self, self.real.resumed = stop, resumed
        return self.real


def supervisor(rewrite=None, jobs=None):
    sent = []
    sup = Supervisor(FakeLoop(), rewrite=rewrite, send=lambda pid, sig, group: sent.append(sig),
                     job_control=jobs)
    sup.start(PID)
    return sup, sent


def test_rewrite_to_0_drops_the_signal():
    sup, sent = supervisor({signal.SIGTERM: 0, signal.SIGSEGV: signal.SIGUSR1})
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGSEGV, signal.SIGTERM):
        sup.on_signal(sig)
    assert sent == [signal.SIGHUP, signal.SIGUSR1] and sup.forwarded == 2


def test_shims_own_ending_still_sends_term_when_term_is_ignored():
    sup, sent = supervisor({signal.SIGTERM: 0})
    sup.end("timeout")
    assert sent == [signal.SIGTERM]


def test_fault_signals_are_forwarded_like_any_other():
    sup, sent = supervisor()
    faults = [signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
              signal.SIGSEGV, signal.SIGSYS]
    for sig in faults:
        sup.on_signal(sig)
    assert sent == faults


def test_forwarded_tstp_stops_shim_once_even_when_the_childs_stop_report_follows():
    jobs = RecordingJobs()
    sup, sent = supervisor(jobs=jobs.attach())
    sup.on_signal(signal.SIGTSTP)  # forwarded, then shim stops itself
    assert sent == [signal.SIGTSTP] and jobs.stops == 1
    sup.on_child_stopped(PID)  # the delegate's stop, read after shim was continued
    assert jobs.stops == 1
    sup.on_signal(signal.SIGCONT)
    assert sent[-1] == signal.SIGCONT and jobs.resumes == 1
    sup.on_child_stopped(PID)  # a new stop (^Z to the delegate's group): shim follows
    assert jobs.stops == 2


def test_without_job_control_nothing_stops():
    sup, sent = supervisor()
    sup.on_signal(signal.SIGTSTP)
    sup.on_child_stopped(PID)
    assert sent == [signal.SIGTSTP]


def test_resident_routes_a_stopped_child_to_the_supervisor():
    jobs = RecordingJobs()
    sup, _ = supervisor(jobs=jobs.attach())
    signals = Signals.__new__(Signals)
    signals.attach = lambda loop, handler: signals
    reaped = []
    resident = Resident(signals, loop=FakeLoop(), reaper=type("R", (), {
        "reap": lambda self: reaped.append(1)})())
    resident.current = sup
    resident.on_signal(signal.SIGCHLD, CLD_STOPPED, PID)
    resident.on_signal(signal.SIGCHLD, 1, PID)  # CLD_EXITED: only reaping
    assert jobs.stops == 1 and len(reaped) == 2


def test_ignored_signals_never_reach_the_handler_nor_count_as_a_stop():
    signals = Signals.__new__(Signals)
    signals.ignored, signals.stop_signal, got = frozenset(), None, []
    signals._handler = lambda signo, code, pid: got.append(signo)
    signals.ignore([signal.SIGTERM])
    signals._dispatch([(signal.SIGTERM, 0, 1), (signal.SIGHUP, 0, 1)])
    assert got == [signal.SIGHUP] and signals.stop_signal == signal.SIGHUP
