"""Every record reaches a healthy sink (issue 16 A1): the default overflow policy holds the
delegate's output while a sink is full but healthy, instead of dropping a burst.

The TCP collector is a loopback stand-in (streams_support.Collector): JSON lines over TCP is
the protocol under test, and no real collector speaks exactly that as simply.
"""

import json

from streams_support import Collector, run_shim


def _lines_in_order(data, n):
    lines = data.splitlines()
    assert len(lines) == n, f"{len(lines)} of {n} records delivered"
    for i, raw in enumerate(lines, 1):
        rec = json.loads(raw)
        assert rec["line"] == str(i) and rec["seq"] == i, (i, rec)


def test_two_million_lines_reach_a_file_and_a_tcp_sink(tmp_path):
    sink, result = tmp_path / "s.jsonl", tmp_path / "r.json"
    collector = Collector()
    try:
        r = run_shim(["--log-sink", f"file://{sink}",
                      "--log-sink", f"tcp://127.0.0.1:{collector.port}",
                      "--result-file", str(result), "--", "sh", "-c", "seq 1 2000000"],
                     timeout=300)
        collector.thread.join(30)  # shim closed the connection: the collector saw EOF
    finally:
        collector.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(b"%d\n" % i for i in range(1, 2000001))  # the console too
    assert b"dropped" not in r.stderr
    counters = json.loads(result.read_text())["counters"]["logs"]["sinks"]
    for name in (f"file://{sink}", f"tcp://127.0.0.1:{collector.port}"):
        assert counters[name]["records"] == 2000000 and counters[name]["dropped"] == 0
    _lines_in_order(sink.read_bytes(), 2000000)
    _lines_in_order(bytes(collector.data), 2000000)


def test_a_small_buffer_still_loses_nothing(tmp_path):
    """A 4 KiB buffer is full all the time: the delegate is paced, nothing dropped."""
    sink = tmp_path / "s.jsonl"
    r = run_shim(["--log-sink", f"file://{sink}", "--log-buffer", "4k", "--", "sh", "-c",
                  "seq 1 200000"], timeout=300)
    assert r.returncode == 0, r.stderr
    _lines_in_order(sink.read_bytes(), 200000)
