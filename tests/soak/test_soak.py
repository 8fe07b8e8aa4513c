"""Soak (issue 16, "Also required"): ten minutes of mixed output through tee files, two sinks
and masking, with one sink restarting every 30 s.

Checked at the end: shim's RSS stayed bounded (no growth after warm-up); the file sink has
every record; the restarting sink lost records only while it was down (or backing off right
after), and its `dropped` counter is exactly the number it never got; tee files and the console
are byte-exact copies of the output with the secret masked, and the secret appears nowhere.

Not in the default tiers (it takes SHIM_SOAK_SECONDS, 600 by default): `scripts/test soak`.
The restarting sink is an HTTP server in this process (a loopback stand-in: it acknowledges each
batch, which makes "delivered" exact; a TCP peer that closes cannot say what it read).
"""

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support import base_env, shim_command

SECONDS = float(os.environ.get("SHIM_SOAK_SECONDS", "600"))
RESTART_EVERY, DOWN_FOR = 30.0, 4.0
SECRET = "soak-Secret-8c1f0e"
# After the server is back the sink may still wait out its backoff (at most 5 s), then
# delivers what it held; records read in that time can still meet a full buffer.
AFTER_SLACK = 5.0 + 2.0
RSS_GROWTH_LIMIT = 16 << 20  # after warm-up; the buffers are 1 MiB per sink

# Mixed output: stdout and stderr lines with a sequence number, the secret in some (also split
# across two writes), lines longer than --max-line, non-UTF-8 bytes, CR progress, partial lines.
DELEGATE = r"""
import os, sys, time
secret = os.environ["SOAK_SECRET"].encode()
end = time.monotonic() + float(sys.argv[2])
raw = open(sys.argv[1], "wb")
n = 0
def out(fd, data):
    raw.write(b"%d:%d:" % (fd, len(data)) + data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
while time.monotonic() < end:
    for _ in range(20):
        n += 1
        kind = n % 50
        if kind == 0:
            out(1, b"o %d long " % n + b"x" * 20000 + b"\n")
        elif kind == 1:
            out(1, b"o %d token=" % n + secret[:5])  # the secret split across two writes
            out(1, secret[5:] + b" end\n")
        elif kind == 2:
            out(2, b"e %d bytes \xff\xfe\x00 and %s\n" % (n, secret))
        elif kind == 3:
            out(1, b"o %d progress 10%%\r50%%\r100%%\n" % n)
        elif kind % 7 == 0:
            out(2, b"e %d warn something happened\n" % n)
        else:
            out(1, b"o %d info request served in %d ms path=/api/v1/items/%d\n" % (n, n % 97, n))
    time.sleep(0.01)
out(1, b"o %d last line without newline" % (n + 1))
raw.close()
"""


class Collector:
    """An HTTP log endpoint that is down DOWN_FOR seconds out of every RESTART_EVERY."""

    def __init__(self):
        self.got = {}  # seq -> ts of each record received (duplicates after a retry: one)
        self.down = []  # (went down, came back) in wall-clock seconds
        self.lock = threading.Lock()
        self.port = None
        self.stopped = threading.Event()
        self.server = self._serve()
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self._cycle, daemon=True)
        self.thread.start()

    def _serve(self):
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with collector.lock:
                    for line in body.splitlines():
                        rec = json.loads(line)
                        collector.got[rec["seq"]] = rec["ts"]
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        server.allow_reuse_address = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return server

    def _cycle(self):
        while not self.stopped.wait(RESTART_EVERY - DOWN_FOR):
            went = time.time()
            self.server.shutdown()
            self.server.server_close()
            if self.stopped.wait(DOWN_FOR):
                self.down.append((went, time.time()))
                return
            ThreadingHTTPServer.allow_reuse_address = True
            self.server = self._serve()
            self.down.append((went, time.time()))

    def close(self):
        self.stopped.set()
        self.thread.join(DOWN_FOR + 5)
        self.server.shutdown()
        self.server.server_close()


def _rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _epoch(ts):
    return time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
        float("0." + ts[20:26])


@pytest.mark.timeout(SECONDS + 300)  # the run itself, then the checks
def test_soak(tmp_path):
    ThreadingHTTPServer.allow_reuse_address = True
    collector = Collector()
    files = {name: tmp_path / name for name in ("raw", "out.tee", "err.tee", "file.jsonl",
                                                "console.out", "console.err", "result.json")}
    env = base_env(SOAK_SECRET=SECRET)
    http_sink = f"http://127.0.0.1:{collector.port}/ingest"
    cmd = shim_command() + [
        "--stdout-path", str(files["out.tee"]), "--stderr-path", str(files["err.tee"]),
        "--log-sink", f"file://{files['file.jsonl']}", "--log-sink", http_sink,
        "--mask-env", "SOAK_SECRET", "--mask-delay", "1s",  # a split secret waits for its rest
        "--result-file", str(files["result.json"]),
        "--", sys.executable, "-c", DELEGATE, str(files["raw"]), str(SECONDS)]
    rss = []
    with open(files["console.out"], "wb") as out, open(files["console.err"], "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        try:
            while proc.poll() is None:
                sample = _rss(proc.pid)
                if sample:
                    rss.append((time.monotonic(), sample))
                time.sleep(1.0)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            collector.close()
    assert proc.returncode == 0, files["console.err"].read_bytes()[-2000:]

    # RSS: bounded, and flat after the first minute.
    start = rss[0][0]
    warm = [r for t, r in rss if t - start > min(60.0, SECONDS / 4)]
    first = [r for t, r in rss if t - start <= min(120.0, SECONDS / 2)]
    assert warm and max(warm) - min(first[len(first) // 2:] or warm) < RSS_GROWTH_LIMIT, \
        (min(warm), max(warm))

    # The console and the tee files: byte-exact, the secret masked (and nowhere in clear).
    streams = {1: bytearray(), 2: bytearray()}
    data = files["raw"].read_bytes()
    pos = 0
    while pos < len(data):
        fd, size, rest = data[pos:pos + 32].split(b":", 2)
        start_at = pos + len(fd) + len(size) + 2
        streams[int(fd)] += data[start_at:start_at + int(size)]
        pos = start_at + int(size)
    masked = {fd: bytes(b).replace(SECRET.encode(), b"***") for fd, b in streams.items()}
    assert files["out.tee"].read_bytes() == masked[1]
    assert files["err.tee"].read_bytes() == masked[2]
    assert files["console.out"].read_bytes() == masked[1]
    # shim's own warnings (whole lines, from any thread) share the console's stderr.
    own = re.compile(rb"shim: [^\n]*\n")
    assert own.sub(b"", files["console.err"].read_bytes()) == masked[2]
    for name in ("out.tee", "err.tee", "file.jsonl", "console.out", "console.err"):
        assert SECRET.encode() not in files[name].read_bytes(), name

    # The file sink: every record, in order, none dropped.
    record = json.loads(files["result.json"].read_text())
    logs = record["counters"]["logs"]
    total = logs["records"]
    seqs = [json.loads(line)["seq"] for line in files["file.jsonl"].read_bytes().splitlines()]
    assert seqs == list(range(1, total + 1))
    assert logs["sinks"][f"file://{files['file.jsonl']}"]["dropped"] == 0

    # The restarting sink: what it never got is exactly its `dropped`, all of it lost while
    # it was down (or backing off right after).
    sink = logs["sinks"][f"http://127.0.0.1:{collector.port}/ingest"]
    missing = sorted(set(range(1, total + 1)) - set(collector.got))
    assert len(missing) == sink["dropped"], (len(missing), sink)
    assert sink["restarts"] >= int(SECONDS // RESTART_EVERY) - 1 or SECONDS < RESTART_EVERY
    ts_by_seq = {}
    for line in files["file.jsonl"].read_bytes().splitlines():
        rec = json.loads(line)
        ts_by_seq[rec["seq"]] = rec["ts"]
    for seq in missing:
        when = _epoch(ts_by_seq[seq])
        assert any(went - 0.5 <= when <= back + AFTER_SLACK for went, back in collector.down), \
            (seq, ts_by_seq[seq], collector.down)
    # The figures, beside the tier's log (scripts/test shows only pass/fail).
    summary = {"seconds": SECONDS, "records": total, "rss_mib_after_warmup":
               [round(min(warm) / 2**20, 1), round(max(warm) / 2**20, 1)],
               "http_sink": sink, "outages": len(collector.down),
               "file_sink": logs["sinks"][f"file://{files['file.jsonl']}"]}
    out_dir = Path(__file__).resolve().parents[2] / ".work" / "test-logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
