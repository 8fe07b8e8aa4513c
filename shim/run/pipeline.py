"""The run pipeline: `shim [OPTIONS] -- COMMAND ARGS...`.

    block signals -> resolve config -> command -> environment -> mode
    -> [resident loop] -> pre-hooks -> wait files -> exec | supervise
    -> post-hooks -> result record -> post file

Every step is a small method over the resolved Config; failures are ShimErrors
that still get a result record (and, unless nothing was run, post-hooks and a post
file) before the CLI edge reports them.  Everything that waits (hooks, wait files,
the delegate, drain) runs on one event loop owned by `Resident`.
"""

import os
import sys
import time

from shim.config import capabilities, options
from shim.errors import (
    REASON_CODES,
    REASON_EXITED,
    REASON_INTERRUPTED,
    REASON_SIGNALED,
    REASON_SKIPPED,
    REASON_TIMEOUT,
    REASON_USAGE,
    ShimError,
    usage_error,
)
from shim.log import LEVELS, Log
from shim.proc.signals import Signals
from shim.run import delegate, envlayer, hygiene, identity as account, runtime

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.config.options import Config
    from shim.proc.reaper import Exit
    from shim.proc.supervise import JobControl, Resident, Supervisor
    from shim.run.refresh import Restarts
    from shim.service import Summary

# Options that need shim to stay resident; any of them rules out exec mode.  From the
# capability registry (shim.config.capabilities), like --help's groups and the README's list.
RESIDENT_FEATURES = capabilities.resident_options()
# Delegate outcomes that --on-error continue turns into success.
CONTINUABLE = (REASON_EXITED, REASON_SIGNALED, REASON_TIMEOUT)


def main(argv: "list[str]", environ: "Mapping[str, str]") -> int:
    signals = Signals()  # first: from here on no signal is lost, whatever phase it comes in
    started = time.time()
    try:
        config = options.resolve(argv, environ)
    except options.HelpRequested as asked:
        sys.stdout.write(options.render_help(full=asked.full))
        return 0
    return Run(config, environ, signals, started).execute()


MASKING = "masking fetched secrets"


def resident_reasons(config: "Config", is_pid1: bool, masking: bool = False) -> "list[str]":
    """Why shim must stay resident (empty: it can exec the delegate).

    masking: secrets were fetched and --mask-secrets is on: only a resident shim can
    replace them in the delegate's output.
    """
    reasons = ["PID 1"] if is_pid1 else []
    if masking:
        reasons.append(MASKING)
    reasons += [config.source_of(name) for name in RESIDENT_FEATURES if config.value(name)]
    platform = runtime.resident_reason(config)
    if platform:
        reasons.append(platform)
    if config.steps.on_error == "continue":
        reasons.append("--on-error continue")
    return reasons


def lifecycle_options(config: "Config") -> bool:
    """Any lifecycle option set (issue 20)?  Cheap: their code loads only then."""
    d = config.debug
    return bool(config.steps.wait_for or config.supervise.stop_delay is not None or
                d.breakpoint_on_failure or d.breakpoint_before or d.dir)


def wants_secrets(config: "Config", env: "Mapping[str, str]") -> bool:
    """Anything to fetch?  Cheap (no imports): `shim -- true` loads no network code."""
    s = config.secrets
    if s.env or s.env_prefix or s.files or s.dirs or s.env_from or s.items:
        return True
    if s.env_refs == "off":
        return False
    return any("ref+" in v or (s.env_refs == "all" and v.startswith(("arn:aws", "gcp:")))
               for k, v in env.items() if not k.startswith("SHIM_"))


def choose_mode(config: "Config", is_pid1: bool, masking: bool = False) -> str:
    """'exec' or 'supervise': auto execs only when nothing needs a resident process."""
    reasons = resident_reasons(config, is_pid1, masking)
    if config.supervise.mode == "exec":  # an explicit --exec gives up masking, nothing else
        conflicts = [r for r in reasons if r not in ("PID 1", MASKING)]
        if config.logs.mask_secrets and config.sources.get("mask_secrets", "default") != "default":
            conflicts.append(config.source_of("mask_secrets"))  # asked for, cannot be done
        if conflicts:
            raise usage_error("option --exec", "cannot be combined with " + ", ".join(conflicts),
                              "drop --exec: the default mode supervises when it must")
        return "exec"
    if config.supervise.mode == "supervise":
        return "supervise"
    return "supervise" if reasons else "exec"


class Outcome:
    """The end of a run: shim's exit code, the delegate's own code, and why."""

    __slots__ = ("exit_code", "delegate_code", "signal_name", "reason", "error")

    def __init__(self, exit_code, reason, delegate_code=None, signal_name=None, error=None):
        self.exit_code, self.reason = exit_code, reason
        self.delegate_code, self.signal_name, self.error = delegate_code, signal_name, error

    @classmethod
    def from_exit(cls, result: "Exit", config: "Config") -> "Outcome":
        """Apply --exit-remap and --on-error continue to the delegate's Exit."""
        if result.reason in (REASON_EXITED, REASON_SIGNALED):
            code = config.supervise.exit_remap.get(result.code, result.code)
        else:  # timeout, cancelled: shim's own codes
            code = REASON_CODES[result.reason]
        if code != 0 and config.steps.on_error == "continue" and result.reason in CONTINUABLE:
            code = 0
        return cls(code, result.reason, result.code, _signal_name(result.signal))

    @classmethod
    def from_error(cls, err: "ShimError", delegate_result: "Exit | None" = None) -> "Outcome":
        return cls(err.code, err.reason, getattr(delegate_result, "code", None),
                   _signal_name(getattr(delegate_result, "signal", None)), err.message())


def _start_dir():
    try:
        return os.getcwd()
    except OSError:  # started in a directory that is gone: children start in "/"
        return "/"


def _signal_name(sig):
    if sig is None:
        return None
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


class Run:
    """One run of the pipeline over a resolved Config.

    `services` are capabilities that live beside the delegate on the resident loop
    (log capture, metrics relay, heartbeat...): each may implement
    `start(run)`, `delegate_started(pid, supervisor)`, `delegate_exited(result)`
    and `stop(run)`; `stdio` is the delegate's (stdin, stdout, stderr), INHERIT by default.
    """

    def __init__(self, config, environ, signals, started, clock=time.monotonic, wall=time.time):
        from shim.proc.spawn import INHERIT

        # Hooks and the delegate start here; the resident shim itself moves to "/" (so it
        # keeps no volume busy), so relative paths in the settings are anchored here first.
        self.start_dir = _start_dir()
        self.config = options.anchored(config, self.start_dir)
        self.environ = environ
        self.signals = signals
        self.started = started
        self.clock = clock
        self.wall = wall
        self.is_pid1 = os.getpid() == 1
        self.log = Log(config.log_level)
        self.phases = {"config": max(0.0, wall() - started)}
        # SHIM_PROFILE_START=1: each phase on stderr as it ends (the static launcher adds
        # CPython's import timings): where start-up time goes, measured inside the binary.
        self.profile = environ.get("SHIM_PROFILE_START", "") not in ("", "0")
        if self.profile:
            self._profile("config", self.phases["config"])
        self.env: "dict[str, str]" = None  # type: ignore[assignment]  # built by the env step
        self.outcome: "Outcome" = None  # type: ignore[assignment]  # decided by run()
        self.mode = None
        # the loop, signalfd and reaper, when shim stays or waits (None in exec mode)
        self.resident: "Resident" = None  # type: ignore[assignment]
        self.services = []
        self.services_built = False
        self.stdio = (INHERIT, INHERIT, INHERIT)
        self.ctty = None  # the stdio slot holding a pty the delegate's session owns (capture)
        self.secret_values = []  # every fetched value, for the log masking to register
        self.templates = None  # (templates, rendered) when the run has templates
        self.secret_pairs = []  # (target, result) of the secrets step, for --refresh
        self.counters = {}  # services' counters, for the result record and the report
        self.argv0 = None
        self.identity = None  # --user and friends (shim/proc/identity.py), once resolved
        signals.ignore(sig for sig, to in config.supervise.rewrite.items() if to == 0)
        self.conditions = []  # --wait-for, parsed before anything runs
        self.secret_targets = []  # what the fetch step resolved (for the env's provenance)
        self.provenance = None  # names added/removed/changed and the step of each (debug, report)

    # -- the pipeline ------------------------------------------------------------
    def execute(self) -> int:
        try:
            try:
                self.outcome = self.steps()
            except ShimError as err:
                self.outcome = Outcome.from_error(err)
                try:
                    self.finish(ran=err.reason != REASON_USAGE)
                except ShimError as late:  # keep the first error; still say what else failed
                    self.log("error", late.message())
                raise
            self.finish(ran=True)
        finally:
            self.close()
        if self.outcome.error:  # a post-hook failed a successful run: say so
            self.log("error", self.outcome.error)
        return self.outcome.exit_code

    def steps(self) -> "Outcome":
        argv = delegate.by_first_word(delegate.command_from(self.config), self.config.commands)
        self.argv0 = argv[0]
        self.identity = account.prepare(self.config, self.log)  # bad users, caps: fail first
        if lifecycle_options(self.config):  # bad wait URLs, stop delay, debug dir: fail first
            from shim.run import lifecycle

            self.conditions = lifecycle.plan(self.config, self.environ)
        platform = self.timed("platform", lambda: runtime.prepare(self.config, self.environ, self.log))
        self.env = envlayer.build(dict(envlayer.inherited(self.environ), **platform), self.config,
                                  stop=self.signals.pending_stop)
        sources_env = dict(self.env)  # what the sources read: shim's own credentials included
        hygiene.scrub(self.env, self.config)  # ...which hooks and the delegate never see
        account.environment(self.identity, self.env, self.config)  # HOME, USER: gosu's rule
        if self.config.secrets.refresh:  # a bad --on-change fails before any fetch
            from shim.run import refresh

            refresh.check(self.config)
        if wants_secrets(self.config, sources_env):
            self.timed("fetch", lambda: self.fetch_secrets(sources_env))  # fail closed
        if self.log.threshold >= LEVELS["debug"] or self.config.report.target:
            self.trace_environment(platform, sources_env)  # which step set each name
        if self.config.templates:  # config files with the secrets inside, before the hooks
            self.timed("templates", lambda: self.render_templates(sources_env))
        if self.config.secrets.refresh and (self.secret_pairs or self.templates):
            self.watch_changes(sources_env)  # --refresh: re-fetch, then --on-change
        masking = bool(self.secret_values) and self.config.logs.mask_secrets
        self.mode = choose_mode(self.config, self.is_pid1, masking)  # bad combinations fail fast
        self.build_services()  # streams and telemetry: bad URLs fail before anything runs
        self.become_resident()
        self.timed("pre_hooks", self.pre_hooks)
        self.timed("wait", self.wait)
        if self.config.debug.breakpoint_before:
            self.timed("breakpoint", self.breakpoint_before)
        if self.identity is not None and self.identity.own:  # after the hooks, before the delegate
            self.counters["owned"] = account.own(self.identity, self.log)  # entries changed
        path = delegate.find_executable(argv[0], self.env,  # after hooks: they may install it
                                        account.can_exec(self.identity))
        if self.mode == "exec":
            self.exec(path, argv)  # does not return
        result = self.timed("delegate", lambda: self.supervise(path, argv))
        outcome = Outcome.from_exit(result, self.config)
        if self.config.debug.breakpoint_on_failure and self.signals.stop_signal is None:
            from shim.run import breakpoint  # not when the stop came first: the pod is going

            if breakpoint.failed(result):
                self.timed("breakpoint", lambda: self.breakpoint_on_failure(outcome))
        return outcome

    def finish(self, ran: bool) -> None:
        """Post-hooks, failure file, result record, post file; each only if configured.

        `ran` is False for usage errors: nothing was run, so no post-hook and no post file.
        """
        if ran:
            self.timed("post_hooks", self.post_hooks)
        # What is written from here on reports the outcome; it never changes it (write_failed).
        self.written(runtime.finish, self.config, self.outcome, self.log)  # SageMaker's file
        if not self.services_built and self.config is not None:
            try:
                self.build_services(finishing=True)
            except ShimError:
                pass  # the same mistake already ended the run; it is reported once
        for service in self.services:  # the report, shim's own metrics: the outcome is known
            if hasattr(service, "finished"):
                self.written(service.finished, self.summary())
        if not (self.config.results.file or self.config.results.termination_path or
                (ran and self.config.steps.post_file)):
            return
        from shim.run import results

        if self.config.results.file or self.config.results.termination_path:
            record = results.build_record(self.outcome, self.phases, self.started, self.wall(),
                                          results.read_results(self.config.results.dir),
                                          self.counters)
            for err in results.write_record(record, self.config.results.file,
                                            self.config.results.termination_path):
                self.write_failed(err)
        if ran and self.config.steps.post_file:
            self.written(results.write_post_file, self.config.steps.post_file,
                         self.outcome.exit_code == 0)

    def start_services(self) -> None:
        """Each service's start sees the delegate's stdio and environment as the services
        before it left them, and hands back what it adds (shim.service: no shared state)."""
        from shim.service import Start

        for service in self.services:
            ctx = Start(self.resident, self.stdio, self.env, self.started, self.identity,
                        self.check_interrupted)
            handoff = service.start(ctx)
            if handoff is None:
                continue
            self.env.update(handoff.env)
            if handoff.stdio is not None:
                self.stdio = handoff.stdio
            if handoff.ctty is not None:
                self.ctty = handoff.ctty

    def summary(self) -> "Summary":
        """The finished run, read-only, for the services' `finished` (reports, metrics)."""
        from shim.service import Summary

        return Summary(self.outcome, self.phases, self.started, self.wall(), self.mode, self.environ,
                       self.counters, getattr(self.config, "detection", None),
                       getattr(self, "provenance", None), self.argv0)

    def written(self, write: "Callable[..., object]", *args: "Any") -> None:
        """Run one write of the finish; a failure is write_failed, not the run's error."""
        try:
            write(*args)
        except ShimError as err:
            self.write_failed(err)

    def write_failed(self, err: "ShimError") -> None:
        """A report, result record, termination message or post file could not be written.
        The outcome is already decided (the delegate's code, or the error that ended the run):
        it stands, the failure is a warning and a counter in the record (write_failures)."""
        self.counters["write_failures"] = self.counters.get("write_failures", 0) + 1
        self.log("warn", err.message() + f" (the exit code stays {self.outcome.exit_code})")

    # -- steps -------------------------------------------------------------------------
    def build_services(self, finishing: bool = False) -> None:
        """Streams and telemetry from the config.  `finishing`: a run that failed before
        they were built still gets its report and final metrics (a failed fetch, say)."""
        from shim.run import services

        self.services_built = True
        # Fetched secrets are masked in the output whenever shim stays beside the delegate.
        secret_values = self.secret_values if self.mode == "supervise" and \
            self.config.logs.mask_secrets else []
        if services.wanted(self.config) or secret_values:
            self.services += services.build(self.config, self.env or {}, secret_values, self.log,
                                            finishing)

    def trace_environment(self, platform: "Mapping[str, str]", sources_env: "Mapping[str, str]") -> None:
        from shim.run import provenance

        self.provenance = provenance.run_trace(self.config, envlayer.inherited(self.environ),
                                               platform, sources_env, self.env,
                                               self.secret_targets)
        for line in provenance.lines(self.provenance):
            self.log("debug", line)

    def become_resident(self) -> None:
        """Start the loop when anything will wait, and adopt orphans before any child runs."""
        c = self.config
        waits = self.mode == "supervise" or c.hooks.pre or c.hooks.post or c.steps.wait_files \
            or c.steps.wait_for or c.debug.breakpoint_before
        if not waits:
            return
        from shim.proc.supervise import Resident

        self.resident = Resident(self.signals)
        if not self.is_pid1 and c.supervise.subreaper:
            from shim.proc import native

            # Before the pre-hooks: a daemon a hook leaves behind must become ours to drain.
            if not native.set_child_subreaper() and self.mode == "supervise":
                self.log("info", "run shim: cannot become a child subreaper; orphans of the "
                                 "delegate go to PID 1 (run shim as PID 1 to reap them)")

    def fetch_secrets(self, sources_env: "Mapping[str, str]") -> None:
        from shim.run import secrets

        try:
            pairs, self.secret_values = secrets.run_step(
                self.config, self.env, lambda: self.signals.pending_stop() is not None, self.log,
                sources_env=sources_env)
            self.secret_targets = [target for target, _ in pairs]
        except secrets.Interrupted:
            self.check_interrupted()
            raise
        self.secret_pairs = pairs

    def render_templates(self, sources_env: "Mapping[str, str]") -> None:
        from shim.run import templates

        try:
            self.templates = templates.run_step(
                self.config, self.env, sources_env,
                lambda: self.signals.pending_stop() is not None, self.log)
        except ShimError as err:
            if err.reason == REASON_INTERRUPTED:
                self.check_interrupted()
            raise
        self.secret_values = self.secret_values + self.templates[1].values

    def restarts(self) -> "Restarts | None":
        """Restarts when a --refresh change may restart the delegate (else None)."""
        if not self.config.secrets.refresh:
            return None
        from shim.run import refresh

        refresher = refresh.restarter(self.services)
        return refresh.Restarts(refresher, self.stdio) if refresher is not None else None

    def watch_changes(self, sources_env: "Mapping[str, str]") -> None:
        from shim.run.refresh import Refresher

        refresher = Refresher(self.config, sources_env, self.secret_pairs,
                              self.templates[0] if self.templates else (), self.log)
        refresher.run = self  # it restarts the delegate through this run (same layer)
        self.services.append(refresher)

    def pre_hooks(self) -> None:
        if self.config.hooks.pre:
            from shim.run import hooks

            hooks.run_hooks(self.config.hooks.pre, self.env, "pre", self.run_child,
                            self.config.hooks.failure, self.log,
                            hooks.output_masker(self.config, self.env, self.secret_values))
        self.check_interrupted()

    def wait(self) -> None:
        s = self.config.steps
        if not (s.wait_files or self.conditions):
            return
        from shim.run.waiter import Skip, Waiter

        # --wait-timeout bounds the whole wait: the files in order, then --wait-for together.
        deadline = self.resident.loop.time() + s.wait_timeout if s.wait_timeout else None
        try:
            Waiter(self.resident, s.wait_timeout, s.poll_interval,
                   log=self.log).wait_all(s.wait_files, deadline)
            if self.conditions:
                from shim.run import waitfor

                waitfor.wait(self.resident, self.conditions, s.wait_timeout, self.log, deadline)
        except Skip as skip:
            raise ShimError("skip", "step", f"an upstream step failed ({skip.path}.err exists)",
                            "nothing to fix here: fix the step that failed",
                            reason=REASON_SKIPPED) from None
        self.check_interrupted()

    def breakpoint_before(self) -> None:
        from shim.run import breakpoint

        breakpoint.before(self.resident, self.config, self.log)
        self.check_interrupted()

    def breakpoint_on_failure(self, outcome: "Outcome") -> None:
        from shim.run import breakpoint, results

        record = results.build_record(outcome, self.phases, self.started, self.wall(), {},
                                      self.counters)
        breakpoint.on_failure(self.resident, self.config, self.log, outcome, record)

    def exec(self, path: str, argv: "list[str]") -> None:
        from shim.proc.spawn import encode_command, exec_error

        self.log("debug", f"exec {path}")
        bargv, benv = encode_command(argv, self.env)
        if self.resident is not None:  # hooks ran: hand over a clean process
            from shim.proc import native

            if not self.is_pid1 and self.config.supervise.subreaper:
                native.set_child_subreaper(False)
            self.close()
        account.become(self.identity)  # exec mode: --user and friends in this process
        self.signals.restore_for_exec()
        try:
            os.execve(path, bargv, self.env)
        except OSError as err:
            raise exec_error(err.errno, argv[0], benv) from None

    def supervise(self, path: str, argv: "list[str]") -> "Exit":
        from shim.proc import native
        from shim.proc.spawn import isatty, spawn, take_terminal_back

        # Only the program's name: arguments may carry secrets and ps shows the title.
        native.set_process_name(f"shim: supervising {os.path.basename(argv[0])}")
        self.start_services()
        account.give_outputs(self.identity, (self.config.logs.stdout_path,
                                             self.config.logs.stderr_path))
        c = self.config.supervise
        # Like tini: under a terminal the delegate gets its own foreground group, so the
        # terminal's Ctrl-C reaches it once, not again through shim.
        # On capture's pty the delegate leads its own session there instead (its own group).
        foreground = isatty(0) and self.stdio[0] < 0 and self.ctty is None
        new_group = (c.signal_group or foreground) and self.ctty is None
        stdin, stdout, stderr = self.stdio
        restarts = self.restarts()  # --on-change restart may start the delegate again
        pid = spawn(path, argv, self.env, self.signals, new_group=new_group, foreground=foreground,
                    stdin=stdin, stdout=stdout, stderr=stderr, cwd=self.start_dir,
                    identity=self.identity, ctty=self.ctty)
        self.leave_start_dir()  # the delegate has it now (dumb-init does the same)
        supervisor = self.supervisor(timeout=c.timeout, cancel_file=self.config.steps.cancel_file,
                                     group=c.signal_group, stop_delay=c.stop_delay)
        supervisor.job_control = self.job_control(foreground)
        for service in self.services:
            service.delegate_started(pid, supervisor)
        try:
            result = self.resident.supervise(pid, supervisor)
            if restarts is not None:
                def start(env: "dict[str, str]", fds: "tuple[int, int, int]") -> int:
                    return spawn(path, argv, env, self.signals, new_group=new_group,
                                 foreground=foreground, stdin=fds[0], stdout=fds[1],
                                 stderr=fds[2], cwd=self.start_dir, identity=self.identity)

                def again() -> "Supervisor":
                    s = self.supervisor(timeout=c.timeout, cancel_file=self.config.steps.cancel_file,
                                        group=c.signal_group, stop_delay=c.stop_delay)
                    s.job_control = self.job_control(foreground)
                    return s
                result, supervisor = restarts.run(self, result, supervisor, start, again)
        finally:
            if foreground:
                take_terminal_back()
        if self.services:  # counters appear in the record only when a service ran
            self.counters["signals_forwarded"] = supervisor.forwarded
        if c.stop_delay:
            self.counters["stop_delay"] = dict(supervisor.delay)
        for service in self.services:
            service.delegate_exited(result)
        self.resident.drain(self.is_pid1, c.grace)
        for service in self.services:
            self.counters.update(service.stop() or {})  # each returns its own counters
        return result

    def post_hooks(self) -> None:
        if not self.config.hooks.post or self.outcome is None:
            return
        from shim.run import hooks

        env = dict(self.env) if self.env is not None else envlayer.inherited(self.environ)
        hygiene.scrub(env, self.config)  # also when the run failed before its env was built
        env["SHIM_EXIT_CODE"] = str(self.outcome.exit_code)
        env["SHIM_REASON"] = self.outcome.reason
        if self.outcome.delegate_code is not None:
            env["SHIM_DELEGATE_EXIT_CODE"] = str(self.outcome.delegate_code)
        if self.resident is None:  # an error came before the loop was needed
            from shim.proc.supervise import Resident

            self.resident = Resident(self.signals)
        try:
            hooks.run_hooks(self.config.hooks.post, env, "post", self.run_child,
                            self.config.hooks.failure, self.log,
                            hooks.output_masker(self.config, env, self.secret_values))
        except ShimError as err:
            if self.outcome.exit_code == 0:  # a failed post-hook fails a successful run
                self.outcome = Outcome.from_error(err)
            else:
                self.log("error", err.message())

    # -- helpers ---------------------------------------------------------------------
    def supervisor(self, timeout: "float | None" = None, cancel_file: "str | None" = None, group: bool = False,
                   stop_delay: "float | None" = None) -> "Supervisor":
        from shim.proc.supervise import Supervisor

        c = self.config.supervise
        return Supervisor(self.resident.loop, rewrite=c.rewrite, group=group, grace=c.grace,
                          timeout=timeout, cancel_file=cancel_file,
                          poll_interval=self.config.steps.poll_interval, stop_delay=stop_delay,
                          log=self.log)

    def run_child(self, path: str, argv: "list[str]", env: "dict[str, str]", output: int = 2) -> "Exit":
        """Run a hook: own process group, stdin from /dev/null (the delegate's input is
        the delegate's), stdout to stderr; supervised with the hook timeout; drained after."""
        from shim.proc.spawn import spawn

        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # stdout to stderr, or both into `output` (hooks' masking pipe, shim.run.hooks)
            pid = spawn(path, argv, env, self.signals, new_group=True, stdin=devnull,
                        stdout=output, stderr=output if output != 2 else -1,
                        cwd=self.start_dir, identity=account.for_hooks(self.identity, self.config))
        finally:
            os.close(devnull)
        supervisor = self.supervisor(timeout=self.config.hooks.timeout, group=True)
        result = self.resident.supervise(pid, supervisor)
        self.resident.drain(self.is_pid1, self.config.supervise.grace)
        if result.reason == REASON_TIMEOUT:
            result.code = REASON_CODES[REASON_TIMEOUT]
        self.check_interrupted()  # a stop signal ended the hook: the run was interrupted
        return result

    def leave_start_dir(self) -> None:
        try:
            os.chdir("/")
        except OSError:
            pass  # no "/" to enter (cannot happen in a container): stay

    def job_control(self, foreground: bool) -> "JobControl | None":
        """As a shell's job (not PID 1, a controlling terminal): stop with the delegate."""
        from shim.proc.supervise import JobControl

        return JobControl.detect(self.is_pid1, foreground)

    def check_interrupted(self) -> None:
        sig = self.signals.stop_signal
        if sig is not None:
            raise ShimError("run", "delegate", f"not started: signal {_signal_name(sig)} arrived first",
                            "", reason=REASON_INTERRUPTED, code=128 + sig)

    def timed(self, phase: str, step: "Callable[[], Any]") -> "Any":
        start = self.clock()
        try:
            return step()
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + self.clock() - start
            if self.profile:
                self._profile(phase, self.clock() - start)

    @staticmethod
    def _profile(phase, seconds) -> None:
        sys.stderr.write(f"shim: profile: phase {phase} {seconds * 1000:.3f} ms\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.resident is not None:
            self.resident.close()
            self.resident = None  # type: ignore[assignment]  # closed
