"""Helpers of the streams tier: a deterministic mixed-binary generator, sink decoding."""

import base64
import hashlib
import json
import socket
import subprocess
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = 1 << 20


def block(i):
    """Block i of the mixed stream: binary with NULs, CR, text lines, no trailing newline, UTF-8.

    Deterministic from i so the test can recompute what the delegate wrote.
    """
    seed = hashlib.sha256(b"%d" % i).digest()
    rnd = (seed * (BLOCK // 32 // 4))  # 256 KiB of high-entropy bytes (with \n at 1/256)
    text = (b"line %d \xc3\xa9t\xc3\xa9 \r progress 50%%\r100%%\n" % i) * 64
    tail = b"no newline here" if i % 3 else b"\x00\xff\xfe"
    body = rnd + text + bytes(range(256)) * 16 + tail
    return (body * (BLOCK // len(body) + 1))[:BLOCK - (i % 7) * 1000]


def generator_script(blocks, forever=False):
    """python3 -c source of a delegate writing blocks 0..blocks-1 (or forever) to stdout."""
    return (f"import sys; sys.path.insert(0, {str(HERE)!r}); import streams_support as s, os\n"
            f"i = 0\n"
            f"while {forever!r} or i < {blocks}:\n"
            f"    b = memoryview(s.block(i)); i += 1\n"
            f"    while b: b = b[os.write(1, b):]\n")


def expected_hash(blocks):
    h = hashlib.sha256()
    for i in range(blocks):
        h.update(block(i))
    return h.hexdigest()


def prefix_hash(length):
    """sha256 of the first `length` bytes of the generated stream."""
    h, i, left = hashlib.sha256(), 0, length
    while left > 0:
        b = block(i)[:left]
        h.update(b)
        left -= len(b)
        i += 1
    return h.hexdigest()


def records_to_bytes(lines, stream="stdout", hasher=None):
    """Rebuild a stream's bytes from JSON records (newline unless partial); returns (hash, n)."""
    h = hasher or hashlib.sha256()
    n = 0
    last_seq = 0
    for raw in lines:
        rec = json.loads(raw)
        assert rec["seq"] > last_seq
        last_seq = rec["seq"]
        if rec["stream"] != stream:
            continue
        data = base64.b64decode(rec["line_b64"]) if "line_b64" in rec else rec["line"].encode()
        if not rec.get("partial"):
            data += b"\n"
        h.update(data)
        n += len(data)
    return h.hexdigest(), n


def hash_fd_stream(stream, hasher=None):
    h = hasher or hashlib.sha256()
    n = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return h.hexdigest(), n
        h.update(chunk)
        n += len(chunk)


def hash_file(path):
    with open(path, "rb") as f:
        return hash_fd_stream(f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """A loopback TCP server that keeps everything it receives (a log collector stand-in:
    no real collector speaks exactly 'JSON lines over TCP' as simply; the protocol is the test)."""

    def __init__(self, rate=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.rate = rate  # bytes per second, None: as fast as possible
        self.conns = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import time

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            with conn:
                while True:
                    chunk = conn.recv(1024 if self.rate else 1 << 20)
                    if not chunk:
                        break
                    self.data += chunk
                    if self.rate:
                        time.sleep(len(chunk) / self.rate)

    def close(self):
        self.sock.close()


def run_shim(args, **kw):
    from support import base_env, shim_command

    return subprocess.run(shim_command() + list(args), env=kw.pop("env", base_env()),
                          capture_output=True, **kw)
