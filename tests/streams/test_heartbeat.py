"""Heartbeat: the endpoint goes away -> the delegate is terminated within
interval x failures + grace (exit 116, reason heartbeat-lost); status posts arrive.

The HTTP endpoint is a small loopback stub (http.server): what an orchestrator's
heartbeat endpoint answers is just a 2xx, which no real server here emulates more truly.
"""

import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shim.errors import EXIT_HEARTBEAT_LOST
from support import base_env, shim_command, wait_for


class _Endpoint(BaseHTTPRequestHandler):
    posts = []
    probes = 0

    def do_GET(self):
        type(self).probes += 1
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_endpoint_goes_away(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    result = tmp_path / "r.json"
    proc = subprocess.Popen(shim_command() + [
        "--heartbeat", url + "/health", "--heartbeat-interval", "200ms",
        "--heartbeat-failures", "3", "--status-url", url + "/status", "--grace", "1s",
        "--result-file", str(result), "--", "sh", "-c", "trap '' TERM; exec sleep 60"],
        env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Alive while the endpoint answers: three probes answered (an event, not a sleep).
    assert wait_for(lambda: _Endpoint.probes >= 3, 20), "no heartbeat probes arrived"
    assert proc.poll() is None
    server.shutdown()
    server.server_close()
    gone = time.monotonic()
    code = proc.wait(timeout=30)
    elapsed = time.monotonic() - gone
    # interval x failures + grace (+ one interval of phase and scheduling slack)
    assert elapsed < 0.2 * 3 + 1.0 + 0.2 + 0.5, elapsed
    assert elapsed > 0.2 * 2  # not before the failures were counted
    assert code == EXIT_HEARTBEAT_LOST
    assert json.loads(result.read_text())["reason"] == "heartbeat-lost"
    assert b"heartbeat" in proc.stderr.read()
    posts = _Endpoint.posts
    assert posts and posts[0]["phase"] == "running" and posts[0]["pid"] > 0


def test_tcp_endpoint_goes_away():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
    threading.Thread(target=accept, daemon=True).start()
    proc = subprocess.Popen(shim_command() + [
        "--heartbeat", f"tcp://127.0.0.1:{port}", "--heartbeat-interval", "100ms",
        "--heartbeat-failures", "2", "--", "sleep", "60"], env=base_env(),
        stderr=subprocess.PIPE)
    assert wait_for(lambda: len(accepted) >= 3, 20), "no heartbeat probes arrived"
    assert proc.poll() is None  # alive while probes connect
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    assert proc.wait(timeout=30) == EXIT_HEARTBEAT_LOST
