"""The contract of a capability that runs beside the delegate (a run service).

It lives here, below shim.run, shim.streams and shim.telemetry, so the layers that
implement it (capture, sinks, StatsD, heartbeat, relay, report) never import the
run pipeline that composes them: shim.run imports them, never the other way round.

Explicit hand-offs, not a shared blackboard: a service is given a narrow, read-only
view of what it may use and returns what it produces; the pipeline composes them.

    start(Start) -> Handoff | None     before the spawn: variables for the delegate, its
                                       stdio (each service sees the previous ones' stdio)
    delegate_started(pid, supervisor)  right after the spawn
    delegate_exited(result)            the delegate's Exit is known
    stop() -> dict | None              after the drain: its counters for the result record
    finished(Summary)                  the outcome is known: reports and final metrics
"""

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable  # the loop owner, Supervisor and Exit live above


class Start:
    """What a service may read and use before the delegate starts.

    resident           the resident loop's owner (`.loop`, `.wait_until(...)`)
    stdio              the delegate's (stdin, stdout, stderr) so far (INHERIT is -1)
    env                the delegate's environment so far (a copy: changes go in a Handoff)
    started            the run's start (Unix time)
    identity           the delegate's identity (files it must own), or None
    check_interrupted  raises the run's interruption when a stop signal arrived
    """

    __slots__ = ("resident", "stdio", "env", "started", "identity", "check_interrupted")

    def __init__(self, resident: "Any", stdio: tuple, env: dict, started: float, identity: "Any" = None,
                 check_interrupted: "Callable[[], None] | None" = None) -> None:
        self.resident, self.stdio, self.env = resident, tuple(stdio), dict(env)
        self.started, self.identity = started, identity
        self.check_interrupted = check_interrupted or (lambda: None)


class Handoff:
    """What a service's start produces: variables to add to the delegate's environment,
    its new stdio, and the terminal the delegate must lead (capture's pty), if any."""

    __slots__ = ("env", "stdio", "ctty")

    def __init__(self, env: "dict | None" = None, stdio: "tuple | None" = None,
                 ctty: "int | None" = None) -> None:
        self.env, self.stdio, self.ctty = dict(env or {}), stdio, ctty


class Summary:
    """The finished run, read-only: what reports and final metrics may read."""

    __slots__ = ("outcome", "phases", "started", "finished", "mode", "environ", "counters",
                 "detection", "provenance", "argv0")

    def __init__(self, outcome: "Any", phases: dict, started: float, finished: float, mode: "str | None",
                 environ: "Any", counters: dict, detection: "Any" = None, provenance: "Any" = None,
                 argv0: "str | None" = None) -> None:
        self.outcome, self.phases, self.started, self.finished = outcome, dict(phases), started, finished
        self.mode, self.environ, self.counters = mode, environ, dict(counters)
        self.detection, self.provenance, self.argv0 = detection, provenance, argv0


class Service:
    """A capability beside the delegate (see shim.run.pipeline.Run): every hook is optional."""

    def start(self, ctx: Start) -> "Handoff | None":
        """Before the delegate is spawned: set up; return what the delegate gets."""
        return None

    def delegate_started(self, pid: "int | None", supervisor: "Any") -> None:
        """Right after the spawn."""

    def delegate_exited(self, result: "Any") -> None:
        """The delegate's Exit is known (descendants may still run)."""

    def stop(self) -> "dict | None":
        """After the drain: flush and close; return counters ({name: value}) for the record."""
        return None

    def finished(self, summary: Summary) -> None:
        """The outcome is known: reports and final metrics."""
