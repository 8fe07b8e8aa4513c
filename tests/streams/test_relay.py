"""Stdio relay over the network: two shims pipe 100 MiB through each other byte-exact,
with half-close both ways; a peer that never comes is exit 115."""

import hashlib
import os
import subprocess
import time

from shim.errors import EXIT_RELAY
from streams_support import free_port
from support import base_env, shim_command

SIZE = 100 << 20


def _data(tmp_path):
    path = tmp_path / "data.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(SIZE))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _pair(source_args, sink_args, path, timeout=120):
    # The source closes its stdout, then lingers: the peer must see EOF at the close.
    src = subprocess.Popen(shim_command() + source_args + [
        "--", "sh", "-c", f"cat {path}; exec 1>&-; sleep 30"], env=base_env(),
        stderr=subprocess.PIPE)
    t0 = time.monotonic()
    dst = subprocess.run(shim_command() + sink_args + ["--", "sha256sum"], env=base_env(),
                         capture_output=True, timeout=timeout)
    took = time.monotonic() - t0
    src.terminate()
    src.wait(30)
    return dst, took


def test_tcp_100_mib_byte_exact_with_half_close(tmp_path):
    path, digest = _data(tmp_path)
    port = free_port()
    dst, took = _pair(["--stdout-to", f"tcp-listen://127.0.0.1:{port}"],
                      ["--stdin-from", f"tcp://127.0.0.1:{port}"], path)
    assert dst.returncode == 0, dst.stderr
    assert dst.stdout.split()[0].decode() == digest
    assert took < 25  # EOF came from the close, not from the source's exit 30 s later


def test_unix_listen_on_the_reading_side_with_capture(tmp_path):
    """The listener is the destination; the source captures (a sink) and half-closes itself."""
    path, digest = _data(tmp_path)
    sock = tmp_path / "relay.sock"
    dst = subprocess.Popen(shim_command() + ["--stdin-from", f"unix-listen://{sock}", "--",
                                             "sha256sum"], env=base_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    src = subprocess.run(shim_command() + ["--stdout-to", f"unix://{sock}", "--log-sink",
                                           f"file://{tmp_path}/s.jsonl", "--", "cat", str(path)],
                         env=base_env(), capture_output=True, timeout=120)
    assert src.returncode == 0, src.stderr
    out, err = dst.communicate(timeout=60)
    assert dst.returncode == 0, err
    assert out.split()[0].decode() == digest


def _connect(port):
    """Connect to a shim's tcp-listen:// address once it listens."""
    import socket

    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def test_stdin_eof_reaches_the_delegate(tmp_path):
    """EOF on the socket is EOF on the delegate's stdin (a bidirectional peer)."""
    import socket

    port = free_port()
    proc = subprocess.Popen(shim_command() + ["--stdin-from", f"tcp-listen://127.0.0.1:{port}",
                                              "--", "wc", "-c"], env=base_env(),
                            stdout=subprocess.PIPE)
    conn = _connect(port)
    conn.sendall(b"12345")
    conn.shutdown(socket.SHUT_WR)
    assert proc.communicate(timeout=30)[0].strip() == b"5"
    conn.close()


def test_peer_never_connects():
    port = free_port()
    t0 = time.monotonic()
    r = subprocess.run(shim_command() + ["--stdin-from", f"tcp-listen://127.0.0.1:{port}",
                                         "--relay-timeout", "500ms", "--", "touch", "/nonexistent/x"],
                       env=base_env(), capture_output=True, timeout=30)
    assert r.returncode == EXIT_RELAY
    assert 0.4 < time.monotonic() - t0 < 10
    assert r.stderr.count(b"\n") == 1 and b"no peer connected within 0.5s" in r.stderr


def test_bad_address_is_a_usage_error():
    r = subprocess.run(shim_command() + ["--stdout-to", "ftp://x", "--", "true"],
                       env=base_env(), capture_output=True, timeout=30)
    assert r.returncode == 125 and r.stderr.count(b"\n") == 1


def test_stdout_and_stderr_to_one_address_with_capture(tmp_path):
    """Both streams captured into one socket: the half-close comes after the last of them."""

    port = free_port()
    proc = subprocess.Popen(shim_command() + [
        "--stdout-to", f"tcp-listen://127.0.0.1:{port}", "--stderr-to",
        f"tcp-listen://127.0.0.1:{port}", "--mask-env", "SECRET", "--", "sh", "-c",
        "echo out $SECRET; exec 1>&-; sleep 0.3; echo err $SECRET >&2"],
        env=base_env(SECRET="hidden-value"))
    conn = _connect(port)
    got = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
    conn.close()
    assert proc.wait(30) == 0
    assert got == b"out ***\nerr ***\n"
