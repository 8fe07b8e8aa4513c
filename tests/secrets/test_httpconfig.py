"""HTTPS config service with a test CA, and its faults: down, slow, 5xx then OK, 403,
garbage, 100 MiB.  The server is a loopback stub (a config service is just HTTP)."""

import json
import threading
import time

import pytest
import servers
from helpers import fetch

from shim.errors import ShimError
from shim.net.http import Client, HttpError, Retry

HUGE = 100 << 20


@pytest.fixture(scope="module")
def config(ca):
    state = {"flaky": 0}
    release = threading.Event()

    def handler(req):
        path = req.path.split("?")[0]
        if path == "/app.json":
            auth = req.headers.get("Authorization")
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"feature": "on", "auth": auth, "nested": {"k": "v"}}).encode()
        if path == "/flaky":
            state["flaky"] += 1
            if state["flaky"] <= 2:
                return 503, {}, b"warming up"
            return 200, {}, b"ready"
        if path == "/forbidden":
            return 403, {}, b'{"error": "token lacks scope config:read"}'
        if path == "/garbage":
            return 200, {"Content-Type": "application/json"}, b"\x00\xffnot json{{{"
        if path == "/slow":
            release.wait(5)
            return 200, {}, b"late"
        if path == "/huge":
            def stream(h):
                h.send_header("Content-Length", str(HUGE))
                h.end_headers()
                chunk = b"x" * (1 << 20)
                try:
                    for _ in range(100):
                        h.wfile.write(chunk)
                except OSError:
                    pass
            return 200, {}, stream
        if path == "/huge-stream":  # no Content-Length: the cap must hold while reading
            def stream_close(h):
                h.send_header("Connection", "close")
                h.end_headers()
                try:
                    for _ in range(100):
                        h.wfile.write(b"y" * (1 << 20))
                except OSError:
                    pass
                h.close_connection = True
            return 200, {}, stream_close
        return 404, {}, b"no such document"
    stub = servers.Stub(handler, tls=ca.server_context())
    stub.base = f"https://config.shim.test:{stub.port}"
    stub.state = state
    yield stub
    release.set()
    stub.stop()


def env_for(ca, **extra):
    return {"SHIM_HTTP_CACERT": str(ca.ca_file), **extra}


def test_json_with_pointer_and_bearer_token(config, ca, names, tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-abc\n")
    ref = f"ref+{config.base}/app.json#/feature"
    ref2 = f"ref+{config.base}/app.json#/auth"
    got = fetch([ref, ref2], env_for(ca, SHIM_HTTP_TOKEN_FILE=str(token)))
    assert got[ref] == "on" and got[ref2] == "Bearer tok-abc"


def test_untrusted_without_the_ca(config, names):
    with pytest.raises(ShimError, match="not trusted"):
        fetch([f"ref+{config.base}/app.json"], {})


def test_down(ca, names):
    port = servers.free_port()
    with pytest.raises(ShimError) as info:
        fetch([f"ref+https://config.shim.test:{port}/x"], env_for(ca), deadline=3)
    assert "refused" in str(info.value) and info.value.code == 117


def test_5xx_then_ok_is_retried(config, ca, names):
    config.state["flaky"] = 0
    ref = f"ref+{config.base}/flaky"
    assert fetch([ref], env_for(ca))[ref] == b"ready"
    assert config.state["flaky"] == 3


def test_403_is_not_retried_and_the_server_text_is_shown(config, ca, names):
    before = config.count("/forbidden")
    with pytest.raises(ShimError) as info:
        fetch([f"ref+{config.base}/forbidden"], env_for(ca))
    assert config.count("/forbidden") == before + 1
    assert "HTTP 403: {\"error\": \"token lacks scope config:read\"}" in str(info.value)


def test_garbage_body_with_a_fragment(config, ca, names):
    with pytest.raises(ShimError, match="not JSON, but the reference has a #/k fragment"):
        fetch([f"ref+{config.base}/garbage#/k"], env_for(ca))


def test_slow_server_times_out_per_request(config, ca, names):
    client = Client(timeout=0.5, retry=Retry(attempts=2, base=0.01))
    from shim.net.tls import client_context
    start = time.monotonic()
    with pytest.raises(HttpError, match="timed out after 0.5s"):
        client.request("GET", config.base + "/slow", tls=client_context(str(ca.ca_file)))
    assert time.monotonic() - start < 3


def test_slow_server_and_the_fetch_deadline(config, ca, names):
    start = time.monotonic()
    with pytest.raises(ShimError) as info:
        fetch([f"ref+{config.base}/slow"], env_for(ca), deadline=1.0)
    assert time.monotonic() - start < 2.5
    assert "timed out" in str(info.value) or "deadline" in str(info.value)


def test_huge_body_is_capped(config, ca, names):
    with pytest.raises(ShimError, match=r"response body of 104857600 bytes is over the 64 MiB cap"):
        fetch([f"ref+{config.base}/huge"], env_for(ca))


def test_huge_body_without_length_is_capped_while_reading(config, ca, names):
    from shim.net.tls import client_context
    client = Client(max_bytes=1 << 20)
    with pytest.raises(HttpError, match="over the 1 MiB cap"):
        client.request("GET", config.base + "/huge-stream", tls=client_context(str(ca.ca_file)))
    with pytest.raises(ShimError, match=r"response body is over the 64 MiB cap"):
        fetch([f"ref+{config.base}/huge-stream"], env_for(ca))


class ConnectProxy:
    """A loopback CONNECT proxy (no real proxy server is needed for this): records targets."""

    def __init__(self):
        import socket
        self.targets = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import socket
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            line = head.split(b"\r\n")[0].decode()
            method, target, _ = line.split(" ")
            self.targets.append((method, target, b"Proxy-Authorization: Basic" in head))
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection(("127.0.0.1", int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_https_proxy_connect_tunnel_and_no_proxy(config, ca, names):
    proxy = ConnectProxy()
    try:
        ref = f"ref+{config.base}/app.json#/feature"
        env = env_for(ca, HTTPS_PROXY=f"http://u:p@127.0.0.1:{proxy.port}")
        assert fetch([ref], env)[ref] == "on"
        assert proxy.targets == [("CONNECT", f"config.shim.test:{config.port}", True)]
        env["NO_PROXY"] = ".shim.test"
        assert fetch([ref], env)[ref] == "on"
        assert len(proxy.targets) == 1
    finally:
        proxy.close()


def test_tls_sessions_are_resumed(config, ca, names):
    """A new connection to the same server resumes the TLS session (cheap handshakes when
    many references are fetched at once)."""
    from shim.sources.base import tls_context
    client = Client()
    reused = []
    give = client._give
    client._give = lambda key, conn: (reused.append(conn.sock.session_reused), give(key, conn))
    ctx = tls_context(str(ca.ca_file))
    client.request("GET", config.base + "/app.json", tls=ctx)
    client.close()
    client.request("GET", config.base + "/app.json", tls=ctx)
    assert reused == [False, True]


def test_http_proxy_gets_the_absolute_uri(names):
    """Plain http through HTTP_PROXY: the request line carries the absolute URI (a loopback
    stub plays the proxy and answers itself)."""
    stub = servers.Stub(lambda req: (200, {}, b"via-proxy"))
    try:
        env = {"HTTP_PROXY": f"http://user:pw@127.0.0.1:{stub.port}"}
        ref = "ref+http://config.shim.test:8080/app.txt"
        assert fetch([ref], env)[ref] == b"via-proxy"
        method, path, headers = stub.requests[0]
        assert (method, path) == ("GET", "http://config.shim.test:8080/app.txt")
        assert headers["Proxy-Authorization"] == "Basic dXNlcjpwdw=="
    finally:
        stub.stop()


def test_redirects_are_followed_with_guards(names, tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-1")
    other = servers.Stub(lambda req: (200, {}, f"other auth={req.headers.get('Authorization')}"
                                      .encode()))
    routes = {"/a": (302, {"Location": "/b"}, b""),
              "/b": (301, {"Location": f"http://127.0.0.1:{other.port}/c"}, b""),
              "/loop": (307, {"Location": "/loop"}, b""),
              "/same": (308, {"Location": "/final"}, b"")}

    def handler(req):
        path = req.path
        if path == "/final":
            return 200, {}, f"final auth={req.headers.get('Authorization')}".encode()
        return routes.get(path, (404, {}, b""))
    first = servers.Stub(handler)
    try:
        env = {"SHIM_HTTP_TOKEN_FILE": str(token)}
        base = f"ref+http://127.0.0.1:{first.port}"
        got = fetch([base + "/a", base + "/same"], env)
        assert got[base + "/a"] == b"other auth=None"  # another host: no token
        assert got[base + "/same"] == b"final auth=Bearer tok-1"
        with pytest.raises(ShimError, match="more than 5 redirects"):
            fetch([base + "/loop"], env)
    finally:
        first.stop()
        other.stop()


def test_no_redirect_from_https_to_http(ca, names):
    down = servers.Stub(lambda req: (302, {"Location": "http://127.0.0.1:9/x"}, b""),
                        tls=ca.server_context())
    try:
        with pytest.raises(ShimError, match="refusing the redirect from https to http"):
            fetch([f"ref+https://config.shim.test:{down.port}/x"], env_for(ca))
    finally:
        down.stop()
