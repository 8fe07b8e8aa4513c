"""Everything a run refuses before it starts anything, as a list: what `shim check` reports.

A run stops at its first mistake (exit 125); `shim check` must find the same mistakes, all
of them, without running, fetching or writing anything.  So each check here calls the very
function the run calls for that part (identity, lifecycle and wait conditions, the env-file
reader, the secrets plan, template parsing, the mode decision, the sink, relay, heartbeat,
StatsD and report parsers) and collects what it raises:

    for err in problems(config, environ):
        print(err.message())

Not checked (they need the network or write files): fetching the references (a template's
references stand for empty text), the platform step (SageMaker layout), connecting to sinks
and relay peers.
"""

from shim.errors import ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Mapping

    from shim.config.options import Config

# The delegate's command does not matter to any check: a placeholder stands in for it.
PLACEHOLDER_COMMAND = ["true"]


def problems(config: "Config", environ: "Mapping[str, str]") -> "list[ShimError]":
    """[ShimError] for everything a run with `config` under `environ` would refuse."""
    found: list = []
    env = _guard(found, _environment, config, environ) or {}
    for check in CHECKS:
        _guard(found, check, config, environ, env)
    return found


def _guard(found, check, *args):
    try:
        return check(*args, found)
    except ShimError as err:
        found.append(err)
        return None


def _noop_log(level, message) -> None:
    pass


def _identity(config, environ, env, found) -> None:
    """--user, --groups, capabilities, limits: resolved as the run does first."""
    from shim.run import identity
    identity.prepare(config, _noop_log)


def _lifecycle(config, environ, env, found) -> None:
    """--wait-for URLs, stop delay, debug options (shim.run.lifecycle lists them all)."""
    from shim.run.pipeline import lifecycle_options
    if lifecycle_options(config):
        from shim.run import lifecycle
        found.extend(lifecycle.problems(config, environ))


def _environment(config, environ, found):
    """The delegate's environment as the run builds it (env files read, ${VAR} expanded)."""
    from shim.run import envlayer
    return envlayer.build(envlayer.inherited(environ), config, stop=lambda: None)


def _secrets(config, environ, env, found) -> None:
    """Every reference and target, parsed as the run's secrets step plans them."""
    from shim.run.pipeline import wants_secrets
    if wants_secrets(config, env):
        from shim.run import secrets
        from shim.sources import settings
        targets = secrets.plan(config, env, errors=found)
        found.extend(settings.problems([item.ref for t in targets for item in t.items], env))


def _mode(config, environ, env, found) -> None:
    """--exec against what needs a resident shim (masking counts only when secrets exist)."""
    from shim.run.pipeline import choose_mode, wants_secrets
    choose_mode(config, False, wants_secrets(config, env) and config.logs.mask_secrets)


def _refresh_signal(config, environ, env, found) -> None:
    """--refresh-signal and every change action (--on-change, templates' on_change)."""
    if config.secrets.refresh:
        from shim.run import refresh
        refresh.check(config)


def _log_sinks(config, environ, env, found) -> None:
    lo = config.logs
    if not lo.sinks:
        return
    from shim.streams import records, sinks
    for url in lo.sinks:  # each one: a sink's mistake does not hide the next one's
        _guard(found, lambda _found, url=url: sinks.parse(url, limit=lo.buffer,
                                                          overflow=lo.overflow))
    labels = records.auto_labels(env)
    labels.update(lo.labels)
    records.check_labels(labels)


def _relay(config, environ, env, found) -> None:
    from shim.telemetry.relay import FLAGS, parse_addr
    r = config.relay
    for fd, text in ((0, r.stdin_from), (1, r.stdout_to), (2, r.stderr_to)):
        if text:
            _guard(found, lambda _found, text=text, fd=fd: parse_addr(text, FLAGS[fd]))


def _heartbeat(config, environ, env, found) -> None:
    h = config.heartbeat
    if not (h.url or h.status_url):
        return
    from shim.telemetry.heartbeat import check_url
    if h.url:
        _guard(found, lambda _found: check_url(h.url, "--heartbeat", ("http", "https", "tcp")))
    if h.status_url:
        _guard(found, lambda _found: check_url(h.status_url, "--status-url", ("http", "https")))


def _statsd(config, environ, env, found) -> None:
    m = config.metrics
    if not m.gateway:
        return
    from shim.telemetry.statsd import StatsdRelay
    StatsdRelay(m.listen, m.gateway, m.tags, m.tag_style, m.mtu, m.flush_interval)  # binds nothing


def _report(config, environ, env, found) -> None:
    if config.report.target:
        from shim.telemetry.report import Report
        Report(config.report.target)  # reads the target; writes at the end of a run only


def _templates(config, environ, env, found) -> None:
    """Every template planned, read and parsed as the run renders it; a reference inside
    stands for an empty text (a check fetches nothing)."""
    if not config.templates:
        return
    from shim.run import templates
    from shim.sources.fetch import Result
    templates.render_all(templates.plan(config), env,
                         lambda items: [Result(item, "") for item in items])


CHECKS = (_identity, _lifecycle, _secrets, _templates, _mode, _refresh_signal, _log_sinks,
          _relay, _heartbeat, _statsd, _report)
