"""The run services a configuration asks for (streams and telemetry), in start order.

Order matters: the stdio relay connects first (its sockets become the consoles),
capture then puts pipes in front of what must be captured, the StatsD relay sets
the delegate's STATSD_* variables, the heartbeat starts with the delegate, and the
report is written last.  Everything is imported only when configured: a plain
`shim -- cmd` loads none of it.
"""

from shim.service import Service  # noqa: F401  (the contract, re-exported)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Mapping

    from shim.config.options import Config


def wanted(config: "Config") -> bool:
    """True if any service is configured (cheap: no imports; the registry's service options)."""
    from shim.config.capabilities import service_options

    return any(config.value(name) for name in service_options())


def build(config: "Config", env: "Mapping[str, str]", secret_values: "list[str]", log: "Callable[[str, str], object]",
          finishing: bool = False) -> "list[Service]":
    """The services for `config`.  Raises a usage ShimError (exit 125) for bad URLs/values.

    `secret_values`: what the secrets step fetched (Run.secret_values), masked in the
    output; `--mask-env` adds the named variables' values.
    """
    services: list = []
    if finishing:  # the run ended before the delegate: only what reports on it
        return _reporters(config, log)
    lo = config.logs
    relay = config.relay
    if relay.stdin_from or relay.stdout_to or relay.stderr_to:
        from shim.telemetry.relay import Relay

        services.append(Relay({0: relay.stdin_from, 1: relay.stdout_to, 2: relay.stderr_to},
                              relay.timeout, log))
    masker = _masker(lo.mask_env, env, secret_values, log)
    capture = _capture(config, env, masker, log)
    if capture is not None:
        services.append(capture)
    h = config.heartbeat
    if h.url or h.status_url:
        from shim.telemetry.heartbeat import Heartbeat

        services.append(Heartbeat(h.url, h.interval, h.failures, h.status_url, log))
    return services + _reporters(config, log)


def _reporters(config, log):
    """The StatsD relay (shim's own metrics at the end) and the run report."""
    out: list = []
    m = config.metrics
    if m.gateway:
        from shim.telemetry.statsd import StatsdRelay

        out.append(StatsdRelay(m.listen, m.gateway, m.tags, m.tag_style, m.mtu,
                               m.flush_interval, log))
    if config.report.target:
        from shim.telemetry.report import Report

        out.append(Report(config.report.target, log))
    return out


def _masker(names, env, secret_values, log):
    """The registry the secrets step filled (shim.util.mask.REGISTRY: fetched values and
    credentials; it warned about what it cannot mask), plus the --mask-env values."""
    if not names and not secret_values:
        return None
    from shim.util.mask import REGISTRY, Masker

    # The secrets step registered every value as delivered (shim.run.secrets.register).
    masker = REGISTRY if secret_values else Masker()
    for name in names:
        if name not in env:
            log("warn", f"mask variable {name}: not set in the delegate's environment; "
                        "nothing to mask for it")
            continue
        masker.add(env[name], f"variable {name}")
    masker.build()
    return masker if masker else None


def _capture(config, env, masker, log):
    lo = config.logs
    if not (lo.sinks or lo.stdout_path or lo.stderr_path or masker):
        return None  # the delegate keeps shim's descriptors: a TTY stays a TTY
    from shim.streams.capture import Capture

    sinks, recorder = [], None
    if lo.sinks:
        from shim.streams import records, sinks as sink_urls

        labels = records.auto_labels(env)
        labels.update(lo.labels)
        records.check_labels(labels)
        recorder = records.Recorder(labels, lo.max_line)
        sinks = [sink_urls.parse(url, limit=lo.buffer, overflow=lo.overflow,
                                 block_limit=lo.block_limit, log=log)
                 for url in lo.sinks]
    tees = {name: path for name, path in (("stdout", lo.stdout_path), ("stderr", lo.stderr_path))
            if path}
    # Sinks and masking see both streams; a tee file alone captures only its own stream.
    which = {1, 2} if (sinks or masker) else {fd for fd, name in ((1, "stdout"), (2, "stderr"))
                                              if name in tees}
    return Capture(which, masker=masker, recorder=recorder, sinks=sinks, tees=tees,
                   flush_timeout=lo.flush_timeout, mask_delay=lo.mask_delay, log=log)
