"""The http(s) and udp sinks against loopback receivers; file rotation in a real run.

The HTTP receiver is a small loopback stub (http.server): log collectors' NDJSON
intake (Loki, Vector, Fluent Bit http input) is just POST + 2xx, which is what it does.
"""

import gzip
import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import base_env, shim_command, wait_for


def _collector(fail_first=1):
    got = {"bodies": [], "auth": set(), "encoding": set(), "calls": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got["calls"] += 1
            if got["calls"] <= fail_first:  # the collector is overloaded at first: retried
                self.send_response(503)
                self.end_headers()
                return
            got["auth"].add(self.headers.get("Authorization"))
            got["encoding"].add(self.headers.get("Content-Encoding"))
            got["bodies"].append(gzip.decompress(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def test_http_sink_ndjson_gzip_bearer_and_retry(tmp_path):
    server, got = _collector()
    token = tmp_path / "token"
    token.write_text("t0ken-value\n")
    url = f"http://127.0.0.1:{server.server_address[1]}/ingest?token_file={token}"
    r = subprocess.run(shim_command() + ["--log-sink", url, "--log-label", "app=demo", "--",
                                         "sh", "-c", "for i in 1 2 3; do echo line $i; done"],
                       env=base_env(), capture_output=True, timeout=60)
    server.shutdown()
    assert r.returncode == 0, r.stderr
    assert b"t0ken-value" not in r.stderr
    records = [json.loads(x) for body in got["bodies"] for x in body.splitlines()]
    assert [x["line"] for x in records] == ["line 1", "line 2", "line 3"]
    assert all(x["app"] == "demo" for x in records)
    assert got["auth"] == {"Bearer t0ken-value"} and got["encoding"] == {"gzip"}
    assert got["calls"] >= 2  # the 503 was retried


def test_an_http_sink_says_once_that_it_is_down_and_once_that_it_is_back():
    """Four refused batches (retried with backoff, 0.1+0.2+0.4+0.8 s) are one outage: two
    lines, not two per retry."""
    server, got = _collector(fail_first=4)
    url = f"http://127.0.0.1:{server.server_address[1]}/ingest"
    r = subprocess.run(shim_command() + ["--log-sink", url, "--", "echo", "line"],
                       env=base_env(), capture_output=True, timeout=60)
    server.shutdown()
    assert r.returncode == 0, r.stderr
    assert got["calls"] == 5 and len(got["bodies"]) == 1
    assert r.stderr.count(b"\n") == 2, r.stderr
    assert b"answered 503" in r.stderr and b"delivering again" in r.stderr


def test_udp_sink_one_record_per_datagram(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    r = subprocess.run(shim_command() + ["--log-sink", f"udp://127.0.0.1:{rx.getsockname()[1]}",
                                         "--", "sh", "-c", "echo a; echo b; echo c"],
                       env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0
    datagrams = [rx.recv(65535) for _ in range(3)]
    assert [json.loads(d)["line"] for d in datagrams] == ["a", "b", "c"]
    assert all(d.count(b"\n") == 1 for d in datagrams)


def test_file_sink_rotates_by_size(tmp_path):
    path = tmp_path / "out.jsonl"
    r = subprocess.run(shim_command() + ["--log-sink", f"file://{path}?max_bytes=4k&backups=2",
                                         "--", "sh", "-c", "i=0; while [ $i -lt 300 ]; do "
                                         "echo line $i; i=$((i+1)); done"],
                       env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0
    files = [path, tmp_path / "out.jsonl.1", tmp_path / "out.jsonl.2"]
    assert all(f.exists() and f.stat().st_size <= 4096 for f in files)
    assert not (tmp_path / "out.jsonl.3").exists()
    last = [json.loads(x)["line"] for x in path.read_text().splitlines()]
    assert last[-1] == "line 299"


def test_lines_are_not_cut_while_output_flows_and_a_prompt_goes_out_when_quiet(tmp_path):
    """Seconds of continuous output: every record is a whole line.  Then a prompt without a
    newline reaches the sink as a partial record while the delegate still waits."""
    sink = tmp_path / "s.jsonl"
    prog = ("import os, time\nend = time.monotonic() + 2.5\nline = b'y' * 99 + b'\\n'\n"
            "while time.monotonic() < end:\n    os.write(1, line * 37)\n"
            "os.write(1, b'Password: ')\ntime.sleep(3)\n")
    proc = subprocess.Popen(shim_command() + ["--log-sink", f"file://{sink}", "--", "python3",
                                              "-c", prog], env=base_env(),
                            stdout=subprocess.DEVNULL)
    # The event: the prompt reaches the sink as a partial record while the delegate is
    # still waiting (it sleeps 3 s after the prompt; shim's partial flush is 1 s).
    def prompt_arrived():
        text = sink.read_text() if sink.exists() else ""
        return '"Password: "' in text
    assert wait_for(prompt_arrived, 20), "the prompt never reached the sink"
    assert proc.poll() is None  # ...before the delegate went on
    records = [json.loads(x) for x in sink.read_text().splitlines()]
    assert records[-1] == {**records[-1], "line": "Password: ", "partial": True}
    assert all(r["line"] == "y" * 99 and "partial" not in r for r in records[:-1])
    assert proc.wait(10) == 0
