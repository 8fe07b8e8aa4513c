"""Section `heartbeat`: liveness of the orchestrator, and status reports to it."""

from shim.config.option import DURATION, INT, STR, Option

SECTION = "heartbeat"

OPTIONS = (
    Option("heartbeat", ["--heartbeat"], "heartbeat.url", STR, None,
           "probe URL (http(s) GET must answer 2xx, tcp://HOST:PORT must accept); "
           "terminate the delegate when it stops (exit 116)", metavar="URL"),
    Option("heartbeat_interval", ["--heartbeat-interval"], "heartbeat.interval", DURATION, 10.0,
           "time between heartbeat probes and status posts (at least 100ms)", minimum=0.1),
    Option("heartbeat_failures", ["--heartbeat-failures"], "heartbeat.failures", INT, 3,
           "consecutive failed probes that end the run (at least 1)", minimum=1),
    Option("status_url", ["--status-url"], "heartbeat.status_url", STR, None,
           "POST a JSON status (phase, uptime, pid, last exit) to URL every interval",
           metavar="URL"),
)
