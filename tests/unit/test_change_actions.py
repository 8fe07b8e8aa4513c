"""Change actions of --refresh (shim.run.refresh) as a policy table with recording fakes:
which action runs for which change, restart over signals, exec before restart, changed
variables without `restart` only warned about, a failed round that keeps everything."""

import signal

import pytest

from shim.config import options
from shim.errors import ShimError
from shim.run import refresh
from shim.run.refresh import Changes, Refresher, parse_action
from shim.run.templates import Template

HUP, USR1 = signal.SIGHUP, signal.SIGUSR1


@pytest.mark.parametrize("text,kind,signo,argv", [
    ("signal", "signal", HUP, None),
    ("signal:USR1", "signal", USR1, None),
    ("signal:SIGUSR1", "signal", USR1, None),
    ("restart", "restart", None, None),
    ("none", "none", None, None),
    ("exec:nginx -s reload", "exec", None, ["nginx", "-s", "reload"]),
    ("exec:sh -c 'a b'", "exec", None, ["sh", "-c", "a b"]),
])
def test_parse_action(text, kind, signo, argv):
    action = parse_action(text, "--on-change", HUP)
    assert (action.kind, action.signo, action.argv) == (kind, signo, argv)


@pytest.mark.parametrize("text", ["restart:now", "exec:", "exec:  ", "signal:NOPE", "sighup", ""])
def test_bad_actions_are_usage_errors(text):
    with pytest.raises(ShimError) as info:
        parse_action(text, "--on-change", HUP)
    assert info.value.code == 125


class FakeSupervisor:
    def __init__(self):
        self.state, self.ended = "running", []

    def end(self, reason):
        self.ended.append(reason)


class FakeRun:
    def __init__(self):
        self.env = {"KEEP": "1", "DB": "old", "GONE": "x"}


def make(argv=(), template_actions=()):
    config = options.resolve(["--refresh", "1s", *argv, "--", "true"], {})
    templates = [Template("/t", None, f"/out{i}", None, None, None, action, "w")
                 for i, action in enumerate(template_actions)]
    logged = []
    r = Refresher(config, {}, [], templates, lambda level, m: logged.append((level, m)))
    r.run, r.supervisor, r.pid = FakeRun(), FakeSupervisor(), 4242
    r.sent, r.ran, r.restarted = [], [], []
    r.send = r.sent.append
    r.run_command = lambda action: r.ran.append(action.argv)
    real_restart = r.restart

    def restart(env):
        r.restarted.append(dict(env))
        real_restart(env)
    r.restart = restart
    return r, logged, templates


def test_files_signal_by_default():
    r, _, _ = make()
    r.act(Changes(files=True))
    assert r.sent == [HUP] and not r.ran and not r.restarted


def test_refresh_signal_is_the_default_signal():
    r, _, _ = make(["--refresh-signal", "USR1"])
    r.act(Changes(files=True))
    assert r.sent == [USR1]


def test_env_change_without_restart_warns_once():
    r, logged, _ = make()
    r.env_now = {"DB": "old"}
    r.act(Changes(env={"DB": "new"}))
    r.act(Changes(env={"DB": "newer"}))
    assert not r.sent and not r.restarted
    warnings = [m for level, m in logged if level == "warn"]
    assert len(warnings) == 1 and "--on-change restart" in warnings[0] and "DB" in warnings[0]
    assert "new" not in warnings[0].replace("DB", "")


def test_restart_applies_env_and_wins_over_signals():
    r, _, _ = make(["--on-change", "restart"], template_actions=["signal:USR1"])
    r.env_now = {"DB": "old", "GONE": "x"}
    r.act(Changes(files=True, env={"DB": "new", "GONE": None}, templates=[Template(
        "/t", None, "/out0", None, None, None, "signal:USR1", "w")]))
    assert r.sent == [] and r.supervisor.ended == [refresh.RESTART]
    assert r.restart_env() == {"KEEP": "1", "DB": "new"} and r.restart_env() is None
    assert r.restarts == 1 and r.env_now == {"DB": "new"}


def test_exec_runs_before_restart_and_once_per_command():
    r, _, _ = make(["--on-change", "exec:reload-it"], template_actions=[None, "restart"])
    r.act(Changes(files=True, templates=[r.templates[0], r.templates[1]]))
    assert r.ran == [["reload-it"]] and r.supervisor.ended == [refresh.RESTART]


def test_none_does_nothing():
    r, _, _ = make(["--on-change", "none"])
    r.act(Changes(files=True, env={"DB": "new"}))
    assert not r.sent and not r.ran and not r.supervisor.ended


def test_no_restart_unless_running():
    r, _, _ = make(["--on-change", "restart"])
    r.supervisor.state = "terminating"
    r.act(Changes(files=True))
    assert not r.supervisor.ended and r.restarts == 0


class FakeLoop:
    def __init__(self):
        self.later = []

    def call_later(self, delay, callback):
        self.later.append(delay)


def test_failed_round_keeps_values_and_is_counted():
    r, logged, _ = make(["--on-change", "restart"])
    r.loop = FakeLoop()
    r.done(None, ShimError("fetch", "ref+vault://secret/x (vault)", "HTTP 503", "retry"))
    assert r.failures == 1 and r.refreshes == 1 and r.loop.later == [1.0]
    assert not r.supervisor.ended and not r.sent
    assert "keeping the previous values" in logged[-1][1]


def test_can_restart_and_check():
    assert not make()[0].can_restart()
    assert make(["--on-change", "restart"])[0].can_restart()
    assert make(template_actions=["restart"])[0].can_restart()
    config = options.resolve(["--refresh", "1s", "--on-change", "exec:", "--", "true"], {})
    with pytest.raises(ShimError, match="invalid change action"):
        refresh.check(config)


class Ended:
    def __init__(self, reason, sig=None):
        self.reason, self.signal, self.code = reason, sig, 0


class LoopRun:
    """A run whose delegate ends for a restart once, then exits."""

    def __init__(self, stop_signal=None):
        self.env = {"A": "old"}
        self.services = []
        self.signals = type("S", (), {"stop_signal": stop_signal})()
        self.started = []
        outer = self

        class Resident:
            def supervise(self, pid, supervisor):
                outer.started.append((pid, supervisor.timeout))
                return Ended("exited")
        self.resident = Resident()


class Sup:
    def __init__(self, timeout):
        self.timeout = timeout


def test_restarts_start_again_with_the_new_env_and_the_rest_of_the_timeout():
    r, _, _ = make(["--on-change", "restart"])
    r.pending_env = {"A": "new"}
    clock = iter([100.0, 104.0]).__next__
    restarts = refresh.Restarts(r, (-1, -1, -1), clock=clock)
    run = LoopRun()
    envs = []
    result, sup = restarts.run(run, Ended(refresh.RESTART), Sup(10.0),
                               lambda env, fds: envs.append(env) or 77, lambda: Sup(10.0))
    assert envs == [{"A": "new"}] and run.env == {"A": "new"}
    assert run.started == [(77, 6.0)] and result.reason == "exited"


def test_a_stop_signal_during_a_restart_ends_the_run():
    r, _, _ = make(["--on-change", "restart"])
    r.pending_env = {"A": "new"}
    run = LoopRun(stop_signal=signal.SIGTERM)
    result, _ = refresh.Restarts(r, (-1, -1, -1)).run(
        run, Ended(refresh.RESTART, signal.SIGTERM), Sup(None), lambda env, fds: 1 / 0,
        lambda: Sup(None))
    assert result.reason == "signaled" and not run.started
