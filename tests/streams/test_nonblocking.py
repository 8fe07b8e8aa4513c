"""Nothing in streams blocks shim's loop or deafens it to a stop signal (issue 16 A3).

A FIFO tee path with no reader, a FIFO tee whose reader stopped reading, a console pipe
nobody reads, a FIFO file sink: each time SIGTERM ends the run promptly with 143.
"""

import os
import signal
import subprocess
import sys
import threading

from support import base_env, shim_command

TERM_EXIT = 128 + signal.SIGTERM
PROMPT = 20  # seconds: a hang is a failure, not a slow pass (the flush timeout is 1s)


def _start(args, **kw):
    return subprocess.Popen(shim_command() + ["--log-level", "info", "--flush-timeout", "1s"] +
                            list(args), env=base_env(), stderr=subprocess.PIPE, **kw)


def _wait_for(proc, text):
    """Read shim's stderr until `text` appears (the event the test syncs on)."""
    seen = b""
    while text not in seen:
        line = proc.stderr.readline()
        assert line, f"shim ended without saying {text!r}: {seen!r}"
        seen += line
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep it drained


def test_a_fifo_tee_without_reader_waits_on_the_loop_and_honours_sigterm(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    proc = _start(["--stdout-path", str(fifo), "--", "echo", "x"], stdout=subprocess.DEVNULL)
    _wait_for(proc, b"a FIFO with no reader yet")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(PROMPT) == TERM_EXIT


def test_a_fifo_tee_gets_the_output_once_a_reader_comes(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    proc = _start(["--stdout-path", str(fifo), "--", "echo", "x"], stdout=subprocess.PIPE)
    _wait_for(proc, b"a FIFO with no reader yet")
    with open(fifo, "rb") as reader:
        assert reader.read() == b"x\n"
    assert proc.wait(PROMPT) == 0
    assert proc.stdout.read() == b"x\n"


# The delegate writes until it is killed; it exits 143 on TERM like most programs.
FLOOD = "import os\nwhile True: os.write(1, b'y' * 65536)\n"


def test_a_fifo_tee_whose_reader_stopped_reading_does_not_deafen_shim(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
    try:
        proc = _start(["--stdout-path", str(fifo), "--", sys.executable, "-c", FLOOD],
                      stdout=subprocess.DEVNULL)
        # Synced on the event itself: the FIFO is full (shim holds the delegate now).
        _wait_until_full(fifo)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(PROMPT) == TERM_EXIT
    finally:
        os.close(reader)


def test_a_console_pipe_nobody_reads_does_not_deafen_shim(tmp_path):
    read_end, write_end = os.pipe()
    try:
        proc = _start(["--log-sink", f"file://{tmp_path}/s.jsonl", "--", sys.executable, "-c",
                       FLOOD], stdout=write_end)
        _wait_until_full(f"/proc/self/fd/{read_end}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(PROMPT) == TERM_EXIT
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_fifo_file_sink_without_reader_is_a_down_sink(tmp_path):
    """A sink's open must not block either: a FIFO without a reader is a sink that is down
    (records dropped, counted), not a writer thread stuck in open()."""
    import json

    fifo, result = tmp_path / "sink.fifo", tmp_path / "r.json"
    os.mkfifo(fifo)
    r = subprocess.run(shim_command() + ["--log-sink", f"file://{fifo}", "--flush-timeout", "1s",
                                         "--result-file", str(result), "--", "echo", "x"],
                       env=base_env(), capture_output=True, timeout=PROMPT)
    assert r.returncode == 0 and r.stdout == b"x\n"
    sink = json.loads(result.read_text())["counters"]["logs"]["sinks"][f"file://{fifo}"]
    assert sink["dropped"] == 1 and sink["records"] == 0
    assert r.stderr.count(b"a fifo with no reader yet") == 1  # said once: the sink is down


def _wait_until_full(path):
    """Block until the pipe at `path` is full: a non-blocking writer of our own gets EAGAIN
    (it adds nothing once full; before that its bytes are only more of the same flood)."""
    import select

    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                os.write(fd, b"y")
            except BlockingIOError:
                return
            select.select([], [], [], 0.01)
    finally:
        os.close(fd)


# Run inside a new net+mount namespace whose resolv.conf names a DNS server that never
# answers (a UDP socket that only reads): a lookup waits out the resolver's timeouts.
SILENT_DNS_DRIVER = r"""
import json, os, signal, socket, subprocess, sys, time
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.77", 53))
proc = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
dns.settimeout(20)
dns.recvfrom(512)  # the event: shim asked for the name
t = time.monotonic()
proc.send_signal(signal.SIGTERM)
code = proc.wait(60)
print(json.dumps({"code": code, "took": time.monotonic() - t}))
"""


def test_a_relay_peer_name_that_does_not_resolve_yet_leaves_sigterm_honoured(tmp_path):
    """The name is looked up on a worker thread: SIGTERM during a lookup that would take
    15 s ends the run at once (it used to wait in getaddrinfo on the loop)."""
    _term_during_a_silent_lookup(tmp_path, ["--stdout-to", "tcp://peer.example.invalid:9",
                                            "--relay-timeout", "60s", "--", "echo", "x"])


def test_a_statsd_gateway_name_that_does_not_resolve_yet_leaves_sigterm_honoured(tmp_path):
    send = ("import os, socket, time; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("
            "b'a:1|c', ('127.0.0.1', int(os.environ['STATSD_PORT']))); time.sleep(60)")
    _term_during_a_silent_lookup(tmp_path, ["--statsd-gateway", "gw.example.invalid:8125",
                                            "--", sys.executable, "-c", send])


def _term_during_a_silent_lookup(tmp_path, args):
    import json
    import shlex

    from support import require_tool

    require_tool("unshare")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.77\noptions timeout:5 attempts:3\n")
    shim = shim_command() + args
    script = (f"ip link set lo up && ip addr add 127.0.0.77/8 dev lo 2>/dev/null; "
              f"mount --bind {shlex.quote(str(resolv))} /etc/resolv.conf && "
              f"exec {shlex.quote(sys.executable)} -c {shlex.quote(SILENT_DNS_DRIVER)} "
              f"{shlex.quote(json.dumps(shim))}")
    r = subprocess.run(["unshare", "--net", "--mount", "--fork", "sh", "-c", script],
                       env=base_env(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["code"] == TERM_EXIT
    assert out["took"] < 5, out  # one resolver timeout; the lookup alone would take 15 s
