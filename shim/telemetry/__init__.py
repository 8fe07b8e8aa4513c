"""Telemetry beside the delegate: StatsD relay, heartbeat and status, stdio relay, run report."""
