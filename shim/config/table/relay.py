"""Section `relay`: the delegate's stdio over the network (tcp, unix; connect or listen)."""

from shim.config.option import DURATION, STR, Option

SECTION = "relay"

OPTIONS = (
    Option("stdin_from", ["--stdin-from"], "relay.stdin_from", STR, None,
           "the delegate's stdin from ADDR: tcp://H:P, tcp-listen://:P, unix:///S, "
           "unix-listen:///S", metavar="ADDR"),
    Option("stdout_to", ["--stdout-to"], "relay.stdout_to", STR, None,
           "the delegate's stdout to ADDR (same forms)", metavar="ADDR"),
    Option("stderr_to", ["--stderr-to"], "relay.stderr_to", STR, None,
           "the delegate's stderr to ADDR (same forms)", metavar="ADDR"),
    Option("relay_timeout", ["--relay-timeout"], "relay.timeout", DURATION, 30.0,
           "how long to connect (with retries) or wait for the peer (exit 115 after)"),
)
