"""Section `metrics`: the in-process StatsD relay and shim's own metrics."""

from shim.config.option import DURATION, ENUM, LIST, SIZE, STR, Option

SECTION = "metrics"

OPTIONS = (
    Option("statsd_gateway", ["--statsd-gateway"], "metrics.gateway", STR, None,
           "relay StatsD to HOST:PORT (udp://, or tcp://HOST:PORT); enables the relay",
           metavar="ADDR"),
    Option("statsd_listen", ["--statsd-listen"], "metrics.listen", STR, "127.0.0.1:8125",
           "where the relay listens (UDP) for the delegate's metrics", metavar="HOST:PORT"),
    Option("statsd_tag", ["--statsd-tag"], "metrics.tags", LIST, [],
           "add tag KEY:VALUE to every metric (DogStatsD or Influx style); repeatable",
           metavar="KEY:VALUE"),
    Option("statsd_tag_style", ["--statsd-tag-style"], "metrics.tag_style", ENUM, "dogstatsd",
           "how tags are added to a metric that has none yet (tagged ones keep their style)",
           choices=("dogstatsd", "influx")),
    Option("statsd_mtu", ["--statsd-mtu"], "metrics.mtu", SIZE, 1432,
           "largest datagram forwarded to the gateway (at least 64)", minimum=64),
    Option("statsd_flush", ["--statsd-flush"], "metrics.flush_interval", DURATION, 0.1,
           "how long metrics are batched before they are forwarded (at least 10ms)",
           minimum=0.01),
)
