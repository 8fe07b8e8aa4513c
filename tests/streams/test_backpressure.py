"""A sink that is down, one that is slow (reads 1 KB/s), one whose disk is full: with
`--log-overflow drop` the delegate is never held; by default (block) a slow sink holds it at
most `--log-block-limit`, a down one not at all; drops are counted."""

import json
import subprocess
import sys

import pytest

from streams_support import Collector, free_port
from support import base_env, missing, shim_command

# The delegate times each of its own writes and writes the worst one to a file.
WRITER = r"""
import os, sys, time
line = (b"x" * 199 + b"\n") * 320  # 64000 bytes: 320 records per write
worst, total, end = 0.0, 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    t = time.monotonic()
    n = os.write(1, line)
    worst = max(worst, time.monotonic() - t)
    total += n
    time.sleep(0.005)
open(sys.argv[1], "w").write("%f %d" % (worst, total))
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs filled to the last byte."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        missing("permission to mount a tmpfs (run as root)")
    try:
        with open(mnt / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def _run(tmp_path, sinks, seconds=3.0, extra=()):
    stats, result = tmp_path / "stats", tmp_path / "result.json"
    args = []
    for url in sinks:
        args += ["--log-sink", url]
    cmd = shim_command() + args + ["--log-buffer", "1M", "--flush-timeout", "1s",
                                   "--result-file", str(result), *extra,
                                   "--", sys.executable, "-c", WRITER, str(stats), str(seconds)]
    proc = subprocess.run(cmd, env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=120)
    worst, total = stats.read_text().split()
    record = json.loads(result.read_text())
    return proc, float(worst), int(total), record


def test_drop_mode_down_slow_and_full_sinks_never_hold_the_delegate(tmp_path, full_disk):
    slow = Collector(rate=1024)
    down = free_port()
    ok = tmp_path / "ok.jsonl"
    try:
        proc, worst, total, record = _run(tmp_path, [
            f"tcp://127.0.0.1:{down}", f"tcp://127.0.0.1:{slow.port}",
            f"file://{full_disk}/sink.jsonl", f"file://{ok}"], extra=("--log-overflow", "drop"))
    finally:
        slow.close()
    assert proc.returncode == 0, proc.stderr
    assert worst < 0.1, f"the delegate waited {worst * 1000:.1f} ms for one write"
    sinks = record["counters"]["logs"]["sinks"]
    assert sinks[f"tcp://127.0.0.1:{down}"]["dropped"] > 0
    assert sinks[f"tcp://127.0.0.1:{slow.port}"]["dropped"] > 0
    assert sinks[f"file://{full_disk}/sink.jsonl"]["dropped"] > 0
    # The healthy sink next to them got every record.
    assert sinks[f"file://{ok}"]["dropped"] == 0
    assert sinks[f"file://{ok}"]["records"] == total // 200
    # One warning line about the drops (plus one per sink that is down).
    assert proc.stderr.count(b"dropped records") == 1
    assert record["exit_code"] == 0


def test_a_down_sink_never_holds_the_delegate_by_default(tmp_path):
    down = free_port()
    proc, worst, total, record = _run(tmp_path, [f"tcp://127.0.0.1:{down}"], seconds=2.0)
    assert proc.returncode == 0
    # The pipe (1 MiB) absorbs a delegate's write; a down sink drops instead of holding.
    assert worst < 0.1, worst
    sink = record["counters"]["logs"]["sinks"][f"tcp://127.0.0.1:{down}"]
    assert sink["dropped"] == total // 200 and sink["records"] == 0


def test_a_slow_sink_holds_at_most_the_block_limit_then_drops_counted(tmp_path):
    slow = Collector(rate=1024)
    try:
        proc, worst, total, record = _run(tmp_path, [f"tcp://127.0.0.1:{slow.port}"],
                                          seconds=2.0, extra=("--log-block-limit", "300ms"))
    finally:
        slow.close()
    assert proc.returncode == 0
    sink = record["counters"]["logs"]["sinks"][f"tcp://127.0.0.1:{slow.port}"]
    assert sink["held_ms"] >= 300 and sink["dropped"] > 0
    assert worst < 0.3 + 0.2, worst  # the limit plus scheduling noise
    assert sink["records"] + sink["dropped"] == total // 200  # every record accounted for
    assert proc.stderr.count(b"slower than the delegate") == 1


def test_sink_reconnects_with_backoff(tmp_path):
    """A collector that comes up after the delegate started gets the records from then on."""
    port = free_port()
    import socket
    import threading
    import time

    got = bytearray()

    def late_server():
        time.sleep(0.7)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        conn, _ = s.accept()
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got.extend(chunk)
        s.close()

    t = threading.Thread(target=late_server, daemon=True)
    t.start()
    r = subprocess.run(shim_command() + ["--log-sink", f"tcp://127.0.0.1:{port}", "--", "sh", "-c",
                                         "echo early; sleep 2; echo late"],
                       env=base_env(), capture_output=True, timeout=30)
    t.join(5)
    assert r.returncode == 0
    lines = [json.loads(x) for x in got.splitlines()]
    assert [x["line"] for x in lines] == ["early", "late"]  # held in the buffer while down
    assert r.stderr.count(b"log sink") == 2  # down once, back once


def test_flush_timeout_bounds_the_exit_and_keeps_the_code(tmp_path):
    """A sink that cannot take the tail: shim still exits within --flush-timeout with the
    delegate's own code, and says what it dropped."""
    import time

    slow = Collector(rate=1024)
    result = tmp_path / "r.json"
    try:
        t0 = time.monotonic()
        r = subprocess.run(shim_command() + [
            "--log-sink", f"tcp://127.0.0.1:{slow.port}", "--flush-timeout", "1s",
            "--result-file", str(result), "--", "sh", "-c",
            "head -c 3000000 /dev/zero | tr '\\0' 'x' | fold -w 99; exit 7"],
            env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        took = time.monotonic() - t0
    finally:
        slow.close()
    assert r.returncode == 7
    assert took < 1.0 + 3.0  # the flush deadline plus start-up and scheduling slack
    sink = json.loads(result.read_text())["counters"]["logs"]["sinks"][f"tcp://127.0.0.1:{slow.port}"]
    assert sink["dropped"] > 0 and sink["records"] + sink["dropped"] == 30304
