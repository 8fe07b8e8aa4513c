"""Run services hand off explicitly (shim/service.py): a service reads a narrow Start view
and returns a Handoff; it never writes into the run.  The pipeline composes the hand-offs
in order, so each service sees what the ones before it produced (issue 17)."""

import inspect
import types

from shim.run import pipeline
from shim.service import Handoff, Service, Start, Summary
from shim.streams.capture import Capture
from shim.telemetry.heartbeat import Heartbeat
from shim.telemetry.relay import Relay
from shim.telemetry.report import Report, build
from shim.telemetry.statsd import StatsdRelay, own_metrics

SERVICES = (Capture, Heartbeat, Relay, Report, StatsdRelay)


class Recording(Service):
    def __init__(self, name, handoff):
        self.name, self.handoff, self.seen = name, handoff, None

    def start(self, ctx):
        self.seen = (ctx.stdio, dict(ctx.env))
        ctx.env["LEAK"] = "no"  # a copy: writing into the view changes nothing
        return self.handoff


def _run(services):
    return types.SimpleNamespace(services=services, resident=object(), stdio=(-1, -1, -1),
                                 env={"A": "0"}, started=1.0, identity=None,
                                 check_interrupted=lambda: None, ctty=None)


def test_the_pipeline_composes_handoffs_in_order():
    relay = Recording("relay", Handoff(stdio=(7, 8, -1)))
    statsd = Recording("statsd", Handoff(env={"STATSD_HOST": "127.0.0.1"}))
    capture = Recording("capture", Handoff(stdio=(7, 9, 10), ctty=1))
    quiet = Recording("quiet", None)
    run = _run([relay, statsd, capture, quiet])
    pipeline.Run.start_services(run)
    assert relay.seen == ((-1, -1, -1), {"A": "0"})
    assert statsd.seen == ((7, 8, -1), {"A": "0"})  # the relay's sockets are its console
    assert capture.seen == ((7, 8, -1), {"A": "0", "STATSD_HOST": "127.0.0.1"})
    assert quiet.seen == ((7, 9, 10), {"A": "0", "STATSD_HOST": "127.0.0.1"})
    assert run.stdio == (7, 9, 10) and run.ctty == 1
    assert run.env == {"A": "0", "STATSD_HOST": "127.0.0.1"}  # no LEAK: views are copies


def test_every_service_takes_the_narrow_contract():
    for cls in SERVICES:
        for hook, params in (("start", ["self", "ctx"]), ("stop", ["self"]), ("finished", ["self", "summary"])):
            fn = getattr(cls, hook)
            got = list(inspect.signature(fn).parameters)
            assert got == params, (cls.__name__, hook, got)


def test_reports_and_metrics_read_only_the_summary():
    outcome = types.SimpleNamespace(exit_code=3, delegate_code=3, signal_name=None, reason="exited")
    summary = Summary(outcome, {"fetch": 0.25}, 100.0, 101.5, "supervise", {"HOSTNAME": "h"},
                      {"signals_forwarded": 2, "logs": {"stdout": {"bytes": 5}}}, argv0="/usr/bin/app")
    doc = build(summary)
    assert (doc["exit_code"], doc["mode"], doc["delegate"], doc["duration_ms"]) == (3, "supervise", {"argv0": "app"},
                                                                                   1500.0)
    lines = own_metrics(summary)
    assert b"shim.exit_code:3|g" in lines and b"shim.signals_forwarded:2|c" in lines
    assert b"shim.log.bytes:5|c|#stream:stdout" in lines


def test_start_views_are_read_only_snapshots():
    ctx = Start(object(), [1, 2, 3], {"X": "1"}, 5.0)
    assert ctx.stdio == (1, 2, 3) and isinstance(ctx.stdio, tuple)
    ctx.check_interrupted()  # a no-op by default
