"""Service `refresh` (--refresh DURATION): re-fetch every target and act on what changed.

Every interval, on a worker thread: fetch every reference of the run again (variables,
files, directories, and the references inside templates), register the new values for
masking, rewrite the files and directories that changed (atomically, as at start) and
re-render the templates whose output changed.  Then, on the loop, the change actions:

    signal[:SIG]  send SIG (default --refresh-signal, HUP) to the delegate   files, templates
    restart       stop the delegate (its stop signal, --grace, KILL) and start it again
                  with the new environment: shim stays (PID 1), same stdio and sinks
    exec:CMD      run CMD (split like --entrypoint, never a shell) as a hook: own process
                  group, stdin /dev/null, stdout to stderr, --hook-timeout  (Vault Agent's
                  agent-inject-command)
    none          only rewrite

--on-change sets the action for every target; a template's own `on_change` wins for it.
Without --on-change files and templates get `signal`, and changed variables get nothing:
a running process's environment cannot change, so only `restart` applies them (shim says
so once).  A fetch failure keeps every old value and file, is reported, counted
(`refresh.failures`), and never touches the delegate.  Restarts are counted in the result
record and the report (`counters.restarts`).
"""

import os

from shim.errors import ShimError, usage_error
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable

    from shim.config.options import Config
    from shim.loop import Loop
    from shim.proc.reaper import Exit
    from shim.proc.supervise import Supervisor
    from shim.run.pipeline import Run
    from shim.service import Service, Start

RESTART = "restart"  # the Supervisor's end reason for a restart (never a run's outcome)


class Action:
    """One change action: kind signal|restart|exec|none, its signal or argv, and where set."""

    __slots__ = ("kind", "signo", "argv", "text")

    def __init__(self, kind, signo=None, argv=None, text=""):
        self.kind, self.signo, self.argv, self.text = kind, signo, argv, text

    def __eq__(self, other):
        return isinstance(other, Action) and (self.kind, self.signo, self.argv) == (
            other.kind, other.signo, other.argv)

    def __hash__(self):
        return hash((self.kind, self.signo, tuple(self.argv or ())))


def parse_action(text: str, where: str, default_signal: int) -> "Action":
    """'signal[:SIG]' | 'restart' | 'exec:CMD' | 'none' -> Action; usage ShimError."""
    from shim.config.kinds import parse_signal
    kind, _, arg = text.partition(":")
    if kind == "signal":
        return Action("signal", parse_signal(arg, where) if arg else default_signal, text=text)
    if kind in ("restart", "none") and not arg:
        return Action(kind, text=text)
    if kind == "exec" and arg.strip():
        from shim.run.delegate import split_words
        return Action("exec", argv=split_words(arg, where), text=text)
    raise usage_error(where, f"invalid change action {show(text)}",
                      "use signal[:SIG], restart, exec:CMD or none")


class Changes:
    """What one refresh round changed."""

    __slots__ = ("files", "env", "templates")

    def __init__(self, files=False, env=None, templates=()):
        self.files, self.env, self.templates = files, env or {}, list(templates)


class Refresher:
    """The service.  `pairs` are the secrets step's (target, result); `templates` the
    templates step's Template list; `sources_env` what the sources read."""

    def __init__(self, config, sources_env, pairs, templates, log, store=None):
        from shim.config.kinds import parse_signal
        from shim.run import hygiene, secrets
        self.config = config
        self.sources_env = dict(sources_env)
        # The targets as the secrets step planned them (the pairs also hold the second round
        # of references inside --env-from contents, which a round re-derives itself).
        planned = dict(sources_env)
        hygiene.scrub(planned, config)
        self.targets = secrets.plan(config, planned) if pairs else []
        self.env_now = {}  # the delegate's environment as started (set in start)
        self.templates = list(templates or ())
        self.interval = config.secrets.refresh
        self.log = log
        self.store = {} if store is None else store
        signo = parse_signal(config.secrets.refresh_signal, config.source_of("refresh_signal"))
        chosen = config.secrets.on_change
        where = config.source_of("on_change")
        self.action = parse_action(chosen, where, signo) if chosen else None
        default = self.action or Action("signal", signo, text="signal")
        self.file_action = default
        self.template_actions = {
            t.dest: parse_action(t.on_change, f"{t.where} on_change", signo) if t.on_change
            else default for t in self.templates}
        self.group = config.supervise.signal_group
        self.run: "Run" = None  # type: ignore[assignment]  # set by the pipeline that adds it
        self.loop: "Loop" = None  # type: ignore[assignment]  # set by start()
        self.pid = None
        self.supervisor = None
        self.timer = None
        self.busy = False
        self.stopped = False
        self.warned_env = False
        self.refreshes = 0  # completed rounds
        self.failures = 0  # rounds that kept the old values
        self.restarts = 0
        self.pending_env = None  # the environment the next start gets

    # -- the service contract ----------------------------------------------------------------
    def start(self, ctx: "Start") -> None:
        # The run itself is given at construction (this service restarts the delegate
        # through the pipeline, one layer it shares); the start view is the delegate's env.
        self.loop = ctx.resident.loop
        self.env_now = dict(ctx.env)

    def delegate_started(self, pid: "int | None", supervisor: "Supervisor | None") -> None:
        self.pid, self.supervisor = pid, supervisor
        self.timer = self.loop.call_later(self.interval, self.tick)

    def delegate_restarted(self, pid: int, supervisor: "Supervisor") -> None:
        """The pipeline started the delegate again (after `restart`): same timer."""
        self.pid, self.supervisor = pid, supervisor

    def delegate_exited(self, result: "Any") -> None:
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def stop(self) -> dict:
        self.delegate_exited(None)
        return {"restarts": self.restarts,
                "refresh": {"rounds": self.refreshes, "failures": self.failures}}

    def can_restart(self) -> bool:
        return any(a.kind == RESTART for a in [self.file_action, *self.template_actions.values()])

    def restart_env(self) -> "dict[str, str] | None":
        """For the pipeline: the environment of the delegate's next start (None: no restart)."""
        env, self.pending_env = self.pending_env, None
        return env

    # -- one round ------------------------------------------------------------------------
    def tick(self) -> None:
        if self.stopped or self.busy:
            return
        self.busy = True
        self.loop.run_in_thread(self.refetch, self.done)

    def refetch(self) -> "Changes":
        """On the worker thread: fetch, mask, render templates in memory, then write files
        and templates (so a failure anywhere leaves every file as it was)."""
        from shim.run import secrets
        cancelled = lambda: self.stopped  # noqa: E731
        changes = Changes()
        env = dict(self.run.env)
        pairs = []
        if self.targets:
            pairs = secrets.fetch(self.targets, self.config, self.sources_env, cancelled, None,
                                  self.store)
            # New values are masked before any reader can see them in a file or the output.
            secrets.register(pairs).build(cancelled)
            new_env = secrets.variables(pairs, env)
            more = secrets._env_from_refs(pairs, new_env, self.config, self.sources_env,
                                          cancelled, None)
            if more:
                secrets.register(more).build(cancelled)
                pairs = pairs + more
            changes.env = self._env_changes(pairs, new_env)
            env.update({k: v for k, v in changes.env.items() if v is not None})
        rendered = self._render(env, cancelled) if self.templates else None
        if pairs:
            changes.files = secrets.write_targets(pairs)
        if rendered is not None:
            changes.templates = rendered.write(only_changed=True)
        return changes

    def _env_changes(self, pairs, new_env):
        """{NAME: new value, or None when an optional reference went missing}."""
        out = {k: v for k, v in new_env.items() if self.env_now.get(k) != v}
        for target, result in pairs:
            if target.kind == "env" and result.value is None and target.dest in self.env_now:
                out[target.dest] = None
        return out

    def _render(self, env, cancelled):
        from shim.run import templates
        from shim.util.mask import REGISTRY
        fetch = templates.fetcher(self.config, self.sources_env, cancelled, None, self.store)
        rendered = templates.render_all(self.templates, env, fetch)  # registers the values
        REGISTRY.build(cancelled)
        return rendered

    def done(self, changes: "Any", error: "BaseException | None") -> None:  # Changes, or None with error
        """On the loop: report a failure, or run the actions of what changed."""
        self.busy = False
        self.refreshes += 1
        if error is not None:
            self.failures += 1
            message = error.message() if isinstance(error, ShimError) else \
                f"{type(error).__name__}: {error}"
            self.log("warn", f"refresh secrets: {message}; keeping the previous values")
        elif not self.stopped:
            self.act(changes)
        if error is None:  # what each round found (names only), for debugging and tests
            found = [w for w, c in (("files", changes.files), ("templates", changes.templates),
                                    ("variables", changes.env)) if c]
            self.log("debug", f"refresh secrets: round {self.refreshes}: "
                     + ("changed " + ", ".join(found) if found else "nothing changed"))
        if not self.stopped:
            self.timer = self.loop.call_later(self.interval, self.tick)

    def act(self, changes: "Changes") -> None:
        actions = []
        if changes.files:
            actions.append(self.file_action)
        for template in changes.templates:
            actions.append(self.template_actions[template.dest])
        if changes.env:
            self.env_now.update({k: v for k, v in changes.env.items() if v is not None})
            for name in [k for k, v in changes.env.items() if v is None]:
                self.env_now.pop(name, None)
            if self.action is not None and self.action.kind == RESTART:
                actions.append(self.action)
            elif not self.warned_env:
                self.warned_env = True
                self.log("warn", "refresh secrets: variables changed ("
                         + ", ".join(sorted(changes.env)) + "); a running process keeps its "
                         "environment: --on-change restart applies them")
        seen = []
        for action in actions:
            if action not in seen:
                seen.append(action)
        for action in seen:
            if action.kind == "exec":
                self.run_command(action)
        if any(a.kind == RESTART for a in seen):
            self.restart(changes.env)
            return
        for action in seen:
            if action.kind == "signal":
                self.send(action.signo)

    def send(self, signo: int) -> None:
        if self.pid is None:
            return
        from shim.proc.supervise import send_signal
        send_signal(self.pid, signo, self.group)

    def restart(self, env_changes: "Any") -> None:
        """Stop the delegate (stop signal, --grace, KILL); the pipeline starts it again."""
        if self.supervisor is None or self.supervisor.state != "running":
            return
        env = dict(self.run.env)
        for name, value in env_changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.pending_env = env
        self.restarts += 1
        self.log("info", "refresh secrets: values changed; restarting the delegate")
        self.supervisor.end(RESTART)

    def run_command(self, action: "Action") -> None:
        """exec:CMD as a hook, without blocking the loop: as the pre- and post-hooks run
        (own process group, stdin /dev/null, output masked onto shim's stderr, the hooks'
        identity); its exit is reported when reaped."""
        from shim.proc.spawn import spawn
        from shim.run import hooks, identity
        from shim.run.delegate import find_executable
        what = f"on-change command {action.argv[0]}"
        run = self.run
        masker = hooks.output_masker(self.config, run.env, getattr(run, "secret_values", None))
        output = hooks.MaskedOutput(masker) if masker is not None else None
        out_fd = output.write_fd if output is not None else 2
        try:
            # shim has left its start directory (as dumb-init does): a relative command
            # path is the start directory's, as it would have been for a hook.
            argv0, start = action.argv[0], getattr(run, "start_dir", None)
            if start and "/" in argv0 and not os.path.isabs(argv0):
                argv0 = os.path.join(start, argv0)
            path = find_executable(argv0, run.env)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                pid = spawn(path, action.argv, dict(run.env), run.signals, new_group=True,
                            stdin=devnull, stdout=out_fd, stderr=out_fd if out_fd != 2 else -1,
                            cwd=getattr(run, "start_dir", None),
                            identity=identity.for_hooks(getattr(run, "identity", None),
                                                        self.config))
            finally:
                os.close(devnull)
        except ShimError as err:
            self.log("warn", f"refresh secrets: {err.message()}")
            return
        finally:
            if output is not None:  # the command holds it now: EOF ends the masking thread
                os.close(output.write_fd)
                output.write_fd = -1
        timeout = self.config.hooks.timeout
        timer = None
        if timeout:
            import signal

            from shim.proc.supervise import send_signal
            timer = self.loop.call_later(timeout, lambda: send_signal(pid, signal.SIGKILL, True))

        def finished(result: "Exit") -> None:
            if timer is not None:
                timer.cancel()
            code = getattr(result, "code", None)
            if code:
                self.log("warn", f"refresh secrets: {what} exited with {code}")
        self.run.resident.reaper.watch(pid, finished)


# -- restarts: the pipeline's supervise step asks these ---------------------------------------
def restarter(services: "list[Service]") -> "Refresher | None":
    """The Refresher of `services` when a change can restart the delegate, else None."""
    for service in services:
        if isinstance(service, Refresher) and service.can_restart():
            return service
    return None


class Restarts:
    """Starting the delegate again after `restart`: the same stdio (kept open here, because
    log capture closes its write ends once the first delegate holds them), a new Supervisor."""

    def __init__(self, refresher, stdio, clock=None):
        import time
        self.refresher = refresher
        self.clock = clock or time.monotonic
        self.started = self.clock()  # --timeout covers every start together, not each
        # Duplicates are close-on-exec: no delegate sees them; closed when restarts end.
        self.stdio = tuple(os.dup(fd) if fd >= 0 else fd for fd in stdio)

    def run(self, run: "Run", result: "Exit", supervisor: "Supervisor",
            start: "Callable[..., int]",
            make_supervisor: "Callable[[], Supervisor]") -> "tuple[Exit, Supervisor]":
        """While the last delegate ended for a restart: start it again.  Returns the last
        (result, supervisor).  A stop signal during a restart ends the run instead."""
        from shim.errors import REASON_EXITED, REASON_SIGNALED
        try:
            while result.reason == RESTART:
                env = self.refresher.restart_env()
                if env is None or run.signals.stop_signal is not None:
                    result.reason = REASON_SIGNALED if result.signal else REASON_EXITED
                    break
                run.env = env
                pid = start(env, self.stdio)
                supervisor = make_supervisor()
                if supervisor.timeout:
                    spent = self.clock() - self.started
                    supervisor.timeout = max(0.001, supervisor.timeout - spent)
                for service in run.services:
                    if hasattr(service, "delegate_restarted"):
                        service.delegate_restarted(pid, supervisor)
                result = run.resident.supervise(pid, supervisor)
        finally:
            for fd in self.stdio:
                if fd >= 0:
                    os.close(fd)
        return result, supervisor


def check(config: "Config") -> None:
    """Every change action parsed (--on-change, templates' on_change): a usage ShimError
    before anything is fetched or written, and for `shim check`."""
    from shim.config.kinds import parse_signal
    signo = parse_signal(config.secrets.refresh_signal, config.source_of("refresh_signal"))
    if config.secrets.on_change:
        parse_action(config.secrets.on_change, config.source_of("on_change"), signo)
    for i, raw in enumerate(config.templates):
        if raw.get("on_change"):
            parse_action(raw["on_change"], f"{config.source_of('template')}[{i}] on_change", signo)
