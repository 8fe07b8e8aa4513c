"""Settings of streams and telemetry that cannot work are refused before anything runs
(one line, exit 125): intervals below their documented floor, port 0 where a peer must
find the port, report URLs of an unknown scheme (issue 16 items 23 and 25)."""

import pytest

from support import run

REFUSED = [
    (["--heartbeat", "tcp://127.0.0.1:9", "--heartbeat-interval", "0"], b"floor of 100ms"),
    (["--heartbeat", "tcp://127.0.0.1:9", "--heartbeat-interval", "50ms"], b"floor of 100ms"),
    (["--status-url", "http://127.0.0.1:9/s", "--heartbeat-interval", "0s"], b"floor of 100ms"),
    (["--heartbeat", "tcp://127.0.0.1:9", "--heartbeat-failures", "0"], b"floor of 1"),
    (["--statsd-gateway", "127.0.0.1:9", "--statsd-flush", "0"], b"floor of 10ms"),
    (["--statsd-gateway", "127.0.0.1:9", "--statsd-mtu", "10"], b"floor of 64"),
    (["--log-sink", "file:///tmp/x", "--max-line", "0"], b"floor of 4"),
    (["--log-sink", "file:///tmp/x", "--log-buffer", "0"], b"floor of 1k"),
    (["--log-sink", "file:///tmp/x", "--log-block-limit", "0"], b"floor of 10ms"),
    (["--stdout-to", "tcp-listen://:0"], b"port other than 0"),
    (["--stdin-from", "tcp://127.0.0.1:0"], b"port other than 0"),
    (["--log-sink", "tcp://127.0.0.1:0"], b"(not 0)"),
    (["--log-sink", "udp://127.0.0.1:0"], b"(not 0)"),
    (["--report", "ftp://x/y"], b'unsupported URL scheme "ftp://"'),
]


@pytest.mark.parametrize("args,said", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_before_the_delegate_runs(tmp_path, args, said):
    marker = tmp_path / "ran"
    r = run(args + ["--", "touch", str(marker)], timeout=30)
    assert r.returncode == 125, r.stderr
    assert said in r.stderr and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
    assert not marker.exists()


def test_the_same_floor_from_a_variable():
    r = run(["--heartbeat", "tcp://127.0.0.1:9", "--", "true"],
            env=__import__("support").base_env(SHIM_HEARTBEAT_INTERVAL="1ms"), timeout=30)
    assert r.returncode == 125 and b"SHIM_HEARTBEAT_INTERVAL" in r.stderr


def test_a_file_url_report_is_a_path(tmp_path):
    import json

    report = tmp_path / "report.json"
    r = run(["--report", f"file://{report}", "--", "true"], timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(report.read_text())["exit_code"] == 0


def test_statsd_listen_host_alone_uses_the_statsd_port():
    r = run(["--statsd-gateway", "127.0.0.1:9", "--statsd-listen", "127.0.0.1", "--", "sh", "-c",
             "echo $STATSD_HOST:$STATSD_PORT"], timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"127.0.0.1:8125\n"
