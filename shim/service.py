"""The contract of a capability that runs beside the delegate (a run service).

It lives here, below shim.run, shim.streams and shim.telemetry, so the layers that
implement it (capture, sinks, StatsD, heartbeat, relay, report) never import the
run pipeline that composes them: shim.run imports them, never the other way round.
"""

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any  # the Run, Supervisor and Exit live above this layer


class Service:
    """A capability beside the delegate (see shim.run.pipeline.Run): every hook is optional."""

    def start(self, run: "Any") -> None:
        """Before the delegate is spawned: set up, adjust `run.stdio` / `run.env`."""

    def delegate_started(self, pid: int, supervisor: "Any") -> None:
        """Right after the spawn."""

    def delegate_exited(self, result: "Any") -> None:
        """The delegate's Exit is known (descendants may still run)."""

    def stop(self, run: "Any") -> None:
        """After the drain: flush and close; put counters in `run.counters`."""

    def finished(self, run: "Any") -> None:
        """The outcome is known (`run.outcome`): reports and final metrics."""
