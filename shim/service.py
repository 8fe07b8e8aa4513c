"""The contract of a capability that runs beside the delegate (a run service).

It lives here, below shim.run, shim.streams and shim.telemetry, so the layers that
implement it (capture, sinks, StatsD, heartbeat, relay, report) never import the
run pipeline that composes them: shim.run imports them, never the other way round.
"""


class Service:
    """A capability beside the delegate (see shim.run.pipeline.Run): every hook is optional."""

    def start(self, run) -> None:
        """Before the delegate is spawned: set up, adjust `run.stdio` / `run.env`."""

    def delegate_started(self, pid, supervisor) -> None:
        """Right after the spawn."""

    def delegate_exited(self, result) -> None:
        """The delegate's Exit is known (descendants may still run)."""

    def stop(self, run) -> None:
        """After the drain: flush and close; put counters in `run.counters`."""

    def finished(self, run) -> None:
        """The outcome is known (`run.outcome`): reports and final metrics."""
