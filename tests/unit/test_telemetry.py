"""Unit tier for shim/telemetry: StatsD tagging, heartbeat policy, relay and report parsing."""

import pytest

from shim.errors import EXIT_USAGE, REASON_HEARTBEAT_LOST, ShimError
from shim.telemetry.heartbeat import Heartbeat
from shim.telemetry.relay import parse_addr
from shim.telemetry.statsd import Tagger, parse_gateway, parse_tags


def test_tags_in_the_line_style():
    t = Tagger(parse_tags(["env:prod", "canary"]))
    assert t.rewrite(b"a.b:1|c") == b"a.b:1|c|#env:prod,canary"
    assert t.rewrite(b"a:1|c|@0.1|#x:y") == b"a:1|c|@0.1|#x:y,env:prod,canary"
    assert t.rewrite(b"cpu,host=a:1|g") == b"cpu,host=a,env=prod,canary=true:1|g"
    assert t.rewrite(b"lat:1:2:3|d") == b"lat:1:2:3|d|#env:prod,canary"
    assert t.rewrite(b"g:-5|g") == b"g:-5|g|#env:prod,canary"
    influx = Tagger(parse_tags(["env:prod"]), style="influx")
    assert influx.rewrite(b"a:1|c") == b"a,env=prod:1|c"
    assert Tagger([]).rewrite(b"a:1|c") == b"a:1|c"  # nothing else changes


@pytest.mark.parametrize("line", [b"garbage", b"a:1", b"a:x|c", b"a:1|q", b":1|c", b"a b:1|c",
                                  b"a:1|c|@x", b"a:1|c||", b"a:|c"])
def test_garbage_is_refused(line):
    assert Tagger(parse_tags(["k:v"])).rewrite(line) is None


def test_gateway_and_tag_errors():
    assert parse_gateway("10.0.0.1:8125") == ("udp", "10.0.0.1", 8125)
    assert parse_gateway("tcp://gw:9125") == ("tcp", "gw", 9125)
    for bad in ("gw", "ftp://gw:1", "gw:0", "gw:x"):
        with pytest.raises(ShimError):
            parse_gateway(bad)
    for bad in (["a b:c"], ["k:"], [":v"], ["a|b"]):
        with pytest.raises(ShimError):
            parse_tags(bad)


def test_relay_addresses():
    assert parse_addr("tcp://h:1", "--stdin-from") == ("connect", "tcp", ("h", 1))
    assert parse_addr("tcp-listen://:9", "--stdin-from") == ("listen", "tcp", ("", 9))
    assert parse_addr("unix-listen:///run/s", "--stdout-to") == ("listen", "unix", "/run/s")
    for bad in ("tcp://h", "udp://h:1", "unix://h/x", "x"):
        with pytest.raises(ShimError) as err:
            parse_addr(bad, "--stdout-to")
        assert err.value.code == EXIT_USAGE


class _Loop:
    """Records timers; runs 'threads' inline (the policy is what is tested)."""

    def __init__(self):
        self.timers = []

    def call_later(self, delay, cb):
        self.timers.append(cb)
        return _Timer()

    def run_in_thread(self, fn, done):
        try:
            done(fn(), None)
        except OSError as err:
            done(None, err)


class _Timer:
    def cancel(self):
        pass


class _Supervisor:
    def __init__(self):
        self.ended = []

    def end(self, reason):
        self.ended.append(reason)


def _heartbeat(results):
    def probe(url, timeout):
        if not results.pop(0):
            raise OSError("connection refused")

    hb = Heartbeat("tcp://h:1", interval=1.0, failures=3, probe=probe)
    loop, sup = _Loop(), _Supervisor()
    hb.loop = loop
    hb.delegate_started(42, sup)
    return hb, loop, sup


def test_heartbeat_ends_the_run_after_n_consecutive_failures():
    _, loop, sup = _heartbeat([True, False, False, True, False, False, False])
    for _ in range(6):
        loop.timers.pop(0)()
        assert not sup.ended  # a success in between resets the count
    loop.timers.pop(0)()
    assert sup.ended == [REASON_HEARTBEAT_LOST]


def test_heartbeat_url_errors():
    for url in ("ftp://x", "tcp://h", "http://"):
        with pytest.raises(ShimError):
            Heartbeat(url)


def test_size_and_int_options_resolve():
    from shim.config import options

    c = options.resolve(["--max-line", "64k", "--log-buffer", "1MiB", "--heartbeat-failures", "5",
                         "--", "true"], {})
    assert (c.logs.max_line, c.logs.buffer, c.heartbeat.failures) == (65536, 1 << 20, 5)
    for bad in (["--max-line", "lots"], ["--heartbeat-failures", "2k"],
                ["--heartbeat-failures", "-1"]):
        with pytest.raises(ShimError) as err:
            options.resolve(bad + ["--", "true"], {})
        assert err.value.code == EXIT_USAGE
