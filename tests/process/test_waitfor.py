"""--wait-for URL: tcp, http(s), file and dns conditions awaited together before the delegate.

Real listeners on loopback (a TCP socket that only starts listening later, an HTTP server
that answers 503 before 200), a DNS responder on 127.0.0.77 inside a network namespace the
test creates, the timeout (exit 123, reason wait-timeout) and SIGTERM during the wait (143).
"""

import http.server
import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from shim.errors import EXIT_SKIPPED, EXIT_USAGE, EXIT_WAIT_TIMEOUT
from support import base_env, require_tool, run, shim_command

HERE = Path(__file__).resolve().parent


def _bound_port():
    """A loopback TCP socket bound but not listening: connects are refused until listen()."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


class _Lines:
    """Read a pipe line by line with a deadline (select, no sleeping)."""

    def __init__(self, pipe):
        self.pipe, self.buf, self.seen = pipe, b"", []

    def until(self, needle, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if needle in line:
                    return line
            left = end - time.monotonic()
            if left <= 0 or not self._more(left):
                raise AssertionError(f"{needle!r} not seen in {self.seen!r}")

    def quiet_for(self, seconds):
        """True when nothing arrives for `seconds` (a negative check: no event to await)."""
        return not self._more(seconds)

    def _more(self, timeout):
        ready, _, _ = select.select([self.pipe], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self.pipe.fileno(), 65536)
        if not chunk:
            return False
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.seen += [line.decode() for line in lines]
        return True


def _start(args):
    return subprocess.Popen(shim_command() + ["--log-level", "info"] + args, env=base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_tcp_listener_that_starts_late(tmp_path):
    sock, port = _bound_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = _start(["--wait-for", url, "--", sys.executable, "-c",
                   "import time; print('started', time.time(), flush=True)"])
    try:
        err, out = _Lines(proc.stderr), _Lines(proc.stdout)
        err.until(f"wait for {url}")
        assert out.quiet_for(0.5)  # refused: still waiting
        listened = time.time()
        sock.listen(8)
        started = float(out.until("started").split()[1])
        assert started >= listened
        assert proc.wait(timeout=20) == 0
        err.until(f"wait for {url}: ready after")
    finally:
        proc.kill()
        proc.wait()
        sock.close()


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    answers: list = []  # status codes to give, in order; the last one repeats
    served: list = []  # (time, status) of every request

    def do_GET(self):
        cls = type(self)
        status = cls.answers[min(len(cls.served), len(cls.answers) - 1)]
        cls.served.append((time.time(), status, self.path))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _http_server(answers):
    handler = type("Handler", (_FlakyHandler,), {"answers": answers, "served": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_http_503_then_200():
    server, handler = _http_server([503, 503, 200])
    url = f"http://127.0.0.1:{server.server_port}/health?check=deep"
    try:
        r = run(["--log-level", "info", "--wait-for", url, "--", sys.executable, "-c",
                 "import time; print(time.time())"], timeout=60)
        assert r.returncode == 0, r.stderr
        statuses = [status for _, status, _ in handler.served]
        assert statuses[:3] == [503, 503, 200], statuses
        first_ok = next(t for t, status, _ in handler.served if status == 200)
        assert float(r.stdout.split()[0]) >= first_ok  # started only after the 200
        assert handler.served[0][2] == "/health?check=deep"  # the query reaches the server
        assert b"check=deep" not in r.stderr  # ...but not the log (values may be tokens)
    finally:
        server.shutdown()


def test_http_status_parameter_accepts_others_and_is_not_sent():
    server, handler = _http_server([503])
    try:
        url = f"http://127.0.0.1:{server.server_port}/ready?status=200,503"
        r = run(["--wait-for", url, "--", "true"])
        assert r.returncode == 0, r.stderr
        assert [path for _, _, path in handler.served] == ["/ready"]
    finally:
        server.shutdown()


def test_conditions_are_awaited_together(tmp_path):
    """A file, a TCP port and an HTTP server, made ready in the reverse order of the flags."""
    sock, port = _bound_port()
    server, handler = _http_server([200])
    marker = tmp_path / "marker"
    urls = [f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{server.server_port}/",
            f"file://{marker}"]
    args = [a for u in urls for a in ("--wait-for", u)]
    proc = _start(args + ["--", "echo", "started"])
    try:
        err, out = _Lines(proc.stderr), _Lines(proc.stdout)
        err.until(f"wait for {urls[1]}: ready")  # the HTTP one, although the TCP one is first
        assert out.quiet_for(0.3)
        marker.write_text("")
        err.until(f"wait for {urls[2]}: ready")
        assert out.quiet_for(0.3)
        sock.listen(8)
        out.until("started")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        sock.close()
        server.shutdown()


def test_file_condition_skips_on_err_marker(tmp_path):
    (tmp_path / "step.err").write_text("")
    r = run(["--wait-for", f"file://{tmp_path / 'step'}", "--", "touch", str(tmp_path / "ran")])
    assert r.returncode == EXIT_SKIPPED
    assert not (tmp_path / "ran").exists()


def test_timeout_is_wait_timeout(tmp_path):
    sock, port = _bound_port()
    result = tmp_path / "r.json"
    try:
        r = run(["--wait-for", f"tcp://127.0.0.1:{port}", "--wait-timeout", "400ms",
                 "--result-file", str(result), "--", "touch", str(tmp_path / "ran")])
    finally:
        sock.close()
    assert r.returncode == EXIT_WAIT_TIMEOUT
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "not ready after 0.4s" in lines[0] and "refused" in lines[0], lines
    assert json.loads(result.read_text())["reason"] == "wait-timeout"
    assert not (tmp_path / "ran").exists()


def test_wait_timeout_bounds_wait_files_and_conditions_together(tmp_path):
    """The wait file comes 1 s into a 2 s timeout: the TCP wait gets only the second left
    (a fresh timeout would end the run 3 s in)."""
    sock, port = _bound_port()
    go = tmp_path / "go"
    proc = _start(["--wait-file", str(go), "--wait-for", f"tcp://127.0.0.1:{port}",
                   "--wait-timeout", "2s", "--", "true"])
    try:
        _Lines(proc.stderr).until(f"wait for file {go}")
        t0 = time.monotonic()  # the deadline started a little before this line
        time.sleep(1.0)  # the stimulus: part of the timeout passes in the file wait
        go.write_text("")
        assert proc.wait(timeout=20) == EXIT_WAIT_TIMEOUT
        assert time.monotonic() - t0 < 2.6
    finally:
        proc.kill()
        proc.wait()
        sock.close()


def test_sigterm_during_the_wait_ends_shim_at_once(tmp_path):
    sock, port = _bound_port()
    url = f"tcp://127.0.0.1:{port}"
    result = tmp_path / "r.json"
    proc = _start(["--wait-for", url, "--result-file", str(result), "--",
                   "touch", str(tmp_path / "ran")])
    try:
        _Lines(proc.stderr).until(f"wait for {url}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    assert json.loads(result.read_text())["reason"] == "interrupted"
    assert not (tmp_path / "ran").exists()


def test_bad_urls_are_one_line_usage_errors():
    cases = {"ftp://host/x": "unknown URL scheme", "tcp://127.0.0.1": "no port",
             "tcp://:80": "no host", "db:5432": "is not a URL", "file://rel/path": "absolute",
             "http://127.0.0.1/?status=abc": "invalid status", "dns://": "names no host"}
    for url, cause in cases.items():
        r = run(["--wait-for", url, "--", "true"])
        lines = r.stderr.decode().splitlines()
        assert r.returncode == EXIT_USAGE, (url, r.stderr)
        assert len(lines) == 1 and "--wait-for" in lines[0] and cause in lines[0], (url, lines)
    r = run(["--", "true"], env=base_env(SHIM_WAIT_FOR="gopher://x"))
    assert r.returncode == EXIT_USAGE and b"SHIM_WAIT_FOR" in r.stderr


def test_credentials_in_a_url_never_reach_the_log():
    sock, port = _bound_port()
    try:
        r = run(["--log-level", "debug", "--wait-for",
                 f"http://user:s3cr3t@127.0.0.1:{port}/?token=t0k3n", "--wait-timeout", "300ms",
                 "--", "true"])
    finally:
        sock.close()
    assert r.returncode == EXIT_WAIT_TIMEOUT
    assert b"s3cr3t" not in r.stderr and b"t0k3n" not in r.stderr and b"user" not in r.stderr


# -- DNS, served by the test inside a network namespace it creates -----------------------
NAME = "db.shim-test.internal"


def _in_netns(tmp_path, fail_first, shim_args):
    """Run shim in a new net+mount namespace whose resolv.conf names a responder on 127.0.0.77."""
    require_tool("unshare")
    require_tool("ip")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.77\noptions timeout:1 attempts:1\n")
    dnslog = tmp_path / "dns.log"
    shim = " ".join(shlex.quote(a) for a in shim_command() + shim_args)
    script = f"""
set -e
ip link set lo up
mount --bind {shlex.quote(str(resolv))} /etc/resolv.conf
{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'dnsserve.py'))} 127.0.0.77 {NAME} 127.0.0.1 \
    {fail_first} > {shlex.quote(str(dnslog))} 2>&1 &
dns=$!
set +e
{shim}
rc=$?
kill $dns
exit $rc
"""
    r = subprocess.run(["unshare", "--net", "--mount", "--fork", "sh", "-c", script],
                       env=base_env(), capture_output=True, timeout=60)
    return r, dnslog.read_text().splitlines() if dnslog.exists() else []


def test_dns_name_served_by_a_test_resolver(tmp_path):
    r, queries = _in_netns(tmp_path, 2, ["--log-level", "info", "--wait-for", f"dns://{NAME}",
                                         "--", "echo", "resolved"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"resolved\n"
    a = [q for q in queries if q.startswith("A ")]
    assert a[:3] == ["A nxdomain", "A nxdomain", "A answer"], queries
    assert f"wait for dns://{NAME}: ready after".encode() in r.stderr


def test_dns_name_that_never_resolves_times_out(tmp_path):
    r, queries = _in_netns(tmp_path, 10 ** 6, ["--wait-for", f"dns://{NAME}",
                                               "--wait-timeout", "1500ms", "--", "true"])
    assert r.returncode == EXIT_WAIT_TIMEOUT, r.stderr
    assert b"does not resolve" in r.stderr
    assert "A nxdomain" in queries


# -- https: verified as for the secret sources ----------------------------------------------
def _tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate from a CA the test makes (openssl)."""
    import ssl

    require_tool("openssl")
    ca_key, ca_crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    key, csr, crt = tmp_path / "srv.key", tmp_path / "srv.csr", tmp_path / "srv.crt"
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
         str(ca_crt), "-days", "2", "-subj", "/CN=shim test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=127.0.0.1")
    ossl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    server, handler = _http_server([200])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server, handler, ca_crt


def test_https_is_verified_against_the_configured_ca(tmp_path):
    server, handler, ca = _tls_server(tmp_path)
    url = f"https://127.0.0.1:{server.server_port}/ready"
    try:
        trusted = base_env(SHIM_HTTP_CACERT=str(ca))
        r = run(["--wait-for", url, "--wait-timeout", "20s", "--", "true"], env=trusted)
        assert r.returncode == 0, r.stderr
        assert [path for _, _, path in handler.served] == ["/ready"]
        # the same server, but its CA is not trusted: never ready, and the log says why
        untrusted = base_env(SSL_CERT_FILE=str(tmp_path / "srv.crt"))  # a leaf is no CA
        r = run(["--wait-for", url, "--wait-timeout", "1s", "--", "true"], env=untrusted)
        assert r.returncode == EXIT_WAIT_TIMEOUT
        assert b"not trusted" in r.stderr, r.stderr
    finally:
        server.shutdown()
