"""Telemetry beside the delegate: StatsD relay, heartbeat and status, stdio relay, run report."""

from shim.util import idna

idna.ensure()  # host names work in the static build too
