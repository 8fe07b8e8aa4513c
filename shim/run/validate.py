"""Everything a run refuses before it starts anything, as a list: what `shim check` reports.

A run stops at its first mistake (exit 125); `shim check` must find the same mistakes, all
of them, without running, fetching or writing anything.  So each check here calls the very
function the run calls for that part (the env-file reader, the secrets plan, the sink,
relay, heartbeat and StatsD parsers, the mode decision) and collects what it raises:

    for err in problems(config, environ):
        print(err.message())

Not checked (they need the network or write files): fetching the references, the platform
step (SageMaker layout), connecting to sinks and relay peers.
"""

from shim.errors import ShimError

# The delegate's command does not matter to any check: a placeholder stands in for it.
PLACEHOLDER_COMMAND = ["true"]


def problems(config, environ):
    """[ShimError] for everything a run with `config` under `environ` would refuse."""
    found = []
    env = _guard(found, _environment, config, environ) or {}
    for check in CHECKS:
        _guard(found, check, config, env)
    return found


def _guard(found, check, *args):
    try:
        return check(*args, found)
    except ShimError as err:
        found.append(err)
        return None


def _environment(config, environ, found):
    """The delegate's environment as the run builds it (env files read, ${VAR} expanded)."""
    from shim.run import envlayer
    return envlayer.build(envlayer.inherited(environ), config, stop=lambda: None)


def _secrets(config, env, found):
    """Every reference and target, parsed as the run's secrets step plans them."""
    from shim.run.pipeline import wants_secrets
    if wants_secrets(config, env):
        from shim.run import secrets
        secrets.plan(config, env, errors=found)


def _mode(config, env, found):
    """--exec against what needs a resident shim (masking counts only when secrets exist)."""
    from shim.run.pipeline import choose_mode, wants_secrets
    choose_mode(config, False, wants_secrets(config, env) and config.logs.mask_secrets)


def _refresh_signal(config, env, found):
    if config.secrets.refresh:
        from shim.config.kinds import parse_signal
        parse_signal(config.secrets.refresh_signal, config.source_of("refresh_signal"))


def _log_sinks(config, env, found):
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


def _relay(config, env, found):
    from shim.telemetry.relay import FLAGS, parse_addr
    r = config.relay
    for fd, text in ((0, r.stdin_from), (1, r.stdout_to), (2, r.stderr_to)):
        if text:
            _guard(found, lambda _found, text=text, fd=fd: parse_addr(text, FLAGS[fd]))


def _heartbeat(config, env, found):
    h = config.heartbeat
    if not (h.url or h.status_url):
        return
    from shim.telemetry.heartbeat import check_url
    if h.url:
        _guard(found, lambda _found: check_url(h.url, "--heartbeat", ("http", "https", "tcp")))
    if h.status_url:
        _guard(found, lambda _found: check_url(h.status_url, "--status-url", ("http", "https")))


def _statsd(config, env, found):
    m = config.metrics
    if not m.gateway:
        return
    from shim.telemetry.statsd import StatsdRelay
    StatsdRelay(m.listen, m.gateway, m.tags, m.tag_style, m.mtu, m.flush_interval)  # binds nothing


def _report(config, env, found):
    if config.report.target:
        from shim.telemetry.report import Report
        Report(config.report.target)  # reads the target; writes at the end of a run only


CHECKS = (_secrets, _mode, _refresh_signal, _log_sinks, _relay, _heartbeat, _statsd, _report)
