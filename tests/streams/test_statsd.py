"""The StatsD relay with a real UDP gateway on loopback: tags added, batched, nothing else
changed, garbage dropped and counted; shim's own metrics to the same gateway."""

import json
import socket
import subprocess
import sys

from streams_support import free_port
from support import base_env, shim_command

SENDER = r"""
import os, socket
assert os.environ["STATSD_HOST"] == os.environ["DD_AGENT_HOST"] == "127.0.0.1"
port = int(os.environ["STATSD_PORT"]); assert os.environ["DD_DOGSTATSD_PORT"] == str(port)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lines = [b"app.requests:1|c", b"app.temp:21.5|g|#room:kitchen", b"app.lat:3|ms|@0.5",
         b"cpu,host=a:0.5|g", b"app.users:bob|s", b"this is not statsd", b"x:|c", b"y:1|zz"]
import time
for i in range(200):
    for line in lines:
        s.sendto(line, ("127.0.0.1", port))
    time.sleep(0.002)  # UDP: a burst beyond the relay's receive buffer is lost, by design
s.sendto(b"a:1|c\nb:2|c", ("127.0.0.1", port))  # two in one packet
"""


def test_relay_tags_batches_and_counts_garbage(tmp_path):
    gw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gw.bind(("127.0.0.1", 0))
    gw.settimeout(5)
    result = tmp_path / "r.json"
    r = subprocess.run(shim_command() + [
        "--statsd-gateway", f"127.0.0.1:{gw.getsockname()[1]}",
        "--statsd-listen", f"127.0.0.1:{free_port()}", "--statsd-tag", "env:prod",
        "--statsd-tag", "team:a", "--statsd-mtu", "512", "--result-file", str(result),
        "--", sys.executable, "-c", SENDER], env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    datagrams = []
    try:
        while True:
            datagrams.append(gw.recv(65535))
    except TimeoutError:
        pass
    gw.close()
    assert all(len(d) <= 512 for d in datagrams)
    lines = [line for d in datagrams for line in d.split(b"\n")]
    app = [x for x in lines if not x.startswith(b"shim.")]
    assert len(datagrams) < len(app) / 5  # batched, many lines per datagram
    assert app.count(b"app.requests:1|c|#env:prod,team:a") == 200
    assert app.count(b"app.temp:21.5|g|#room:kitchen,env:prod,team:a") == 200
    assert app.count(b"app.lat:3|ms|@0.5|#env:prod,team:a") == 200
    assert app.count(b"cpu,host=a,env=prod,team=a:0.5|g") == 200
    assert app.count(b"app.users:bob|s|#env:prod,team:a") == 200
    assert b"a:1|c|#env:prod,team:a" in app and b"b:2|c|#env:prod,team:a" in app
    assert len(app) == 5 * 200 + 2  # nothing else
    own = [x for x in lines if x.startswith(b"shim.")]
    assert b"shim.exit_code:0|g|#env:prod,team:a" in own
    assert any(x.startswith(b"shim.phase.duration:") for x in own)
    counters = json.loads(result.read_text())["counters"]["statsd"]
    assert counters["garbage"] == 3 * 200
    assert counters["forwarded"] == 5 * 200 + 2


def test_bad_gateway_is_a_usage_error():
    r = subprocess.run(shim_command() + ["--statsd-gateway", "nohostport", "--", "true"],
                       env=base_env(), capture_output=True, timeout=30)
    assert r.returncode == 125 and r.stderr.count(b"\n") == 1


def test_tcp_gateway_gets_newline_separated_lines(tmp_path):
    gw = socket.socket()
    gw.bind(("127.0.0.1", 0))
    gw.listen(1)
    gw.settimeout(10)
    got = bytearray()

    def serve():
        conn, _ = gw.accept()
        conn.settimeout(10)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got.extend(chunk)

    import threading

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = subprocess.run(shim_command() + [
        "--statsd-gateway", f"tcp://127.0.0.1:{gw.getsockname()[1]}",
        "--statsd-listen", f"127.0.0.1:{free_port()}", "--", sys.executable, "-c",
        "import os, socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.sendto(b'a:1|c', ('127.0.0.1', int(os.environ['STATSD_PORT'])))"],
        env=base_env(), capture_output=True, timeout=60)
    t.join(10)
    gw.close()
    assert r.returncode == 0, r.stderr
    lines = bytes(got).split(b"\n")
    assert lines[0] == b"a:1|c" and lines[-1] == b""
    assert any(x.startswith(b"shim.exit_code:0|g") for x in lines)


EVENTS = r"""
import os, socket
assert os.environ["STATSD_HOST"] == "127.0.0.1"  # --statsd-listen 0.0.0.0: a connectable address
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in (b"_e{5,4}:hello|text", b"_sc|svc.up|0|#t:1", b"_e{5,6}:he|lo|te|t|x|p:low",
             b"_sc|svc|2|m:down|really", b"_sc|svc|7", b"_e{5,9}:hello|text"):
    s.sendto(line, (os.environ["STATSD_HOST"], int(os.environ["STATSD_PORT"])))
"""


def _relay(tags):
    gw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gw.bind(("127.0.0.1", 0))
    gw.settimeout(5)
    args = ["--statsd-gateway", f"127.0.0.1:{gw.getsockname()[1]}",
            "--statsd-listen", f"0.0.0.0:{free_port()}", "--statsd-flush", "10ms"]
    for tag in tags:
        args += ["--statsd-tag", tag]
    r = subprocess.run(shim_command() + args + ["--", sys.executable, "-c", EVENTS],
                       env=base_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = []
    try:
        while True:
            lines += gw.recv(65535).split(b"\n")
    except TimeoutError:
        pass
    gw.close()
    return [x for x in lines if not x.startswith(b"shim.")]


def test_events_and_service_checks_pass_unchanged_without_tags():
    assert _relay([]) == [b"_e{5,4}:hello|text", b"_sc|svc.up|0|#t:1",
                          b"_e{5,6}:he|lo|te|t|x|p:low", b"_sc|svc|2|m:down|really"]


def test_events_and_service_checks_get_tags_where_dogstatsd_reads_them():
    assert _relay(["env:prod"]) == [
        b"_e{5,4}:hello|text|#env:prod", b"_sc|svc.up|0|#t:1,env:prod",
        b"_e{5,6}:he|lo|te|t|x|p:low|#env:prod",  # '|' inside the counted title and text
        b"_sc|svc|2|#env:prod|m:down|really"]  # the message stays last
