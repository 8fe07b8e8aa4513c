"""Capture on: the console stays byte-exact, and tee files and sinks carry the same bytes.

1 GiB of mixed binary (NULs, CR, UTF-8, lines longer than --max-line, no final
newline) through a file sink and a tee file, checked by hash; and the same when
the delegate is TERMed mid-stream: nothing it wrote before the signal is lost.
"""

import json
import signal
import subprocess
import sys

from streams_support import (
    expected_hash,
    generator_script,
    hash_fd_stream,
    hash_file,
    prefix_hash,
    records_to_bytes,
)
from support import base_env, shim_command

GIB_BLOCKS = 1030  # blocks are a little under 1 MiB: this is just over 1 GiB


def _sink_hash(path):
    with open(path, "rb") as f:
        return records_to_bytes(f)


def test_one_gib_byte_exact_on_console_tee_and_sink(tmp_path):
    sink, tee, result = tmp_path / "sink.jsonl", tmp_path / "tee.bin", tmp_path / "r.json"
    cmd = shim_command() + [
        "--log-sink", f"file://{sink}", "--stdout-path", str(tee), "--log-overflow", "block",
        "--log-buffer", "64M", "--max-line", "64k", "--result-file", str(result),
        "--", sys.executable, "-c", generator_script(GIB_BLOCKS)]
    proc = subprocess.Popen(cmd, env=base_env(), stdout=subprocess.PIPE)
    console = hash_fd_stream(proc.stdout)
    assert proc.wait(timeout=600) == 0
    want = expected_hash(GIB_BLOCKS)
    assert console[0] == want
    assert hash_file(tee)[0] == want
    assert _sink_hash(sink)[0] == want
    counters = json.loads(result.read_text())["counters"]["logs"]
    assert counters["stdout"]["bytes"] == console[1] >= 1 << 30
    assert all(c["dropped"] == 0 for c in counters["sinks"].values())


def test_term_mid_stream_loses_nothing_written_before(tmp_path):
    sink, tee = tmp_path / "sink.jsonl", tmp_path / "tee.bin"
    cmd = shim_command() + [
        "--log-sink", f"file://{sink}", "--stdout-path", str(tee), "--log-overflow", "block",
        "--log-buffer", "64M", "--", sys.executable, "-c", generator_script(0, forever=True)]
    proc = subprocess.Popen(cmd, env=base_env(), stdout=subprocess.PIPE)
    got = proc.stdout.read(64 << 20)  # the delegate is mid-stream now
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM  # the delegate's own death, exactly
    length = len(got) + len(rest)
    want = prefix_hash(length)
    import hashlib

    assert hashlib.sha256(got + rest).hexdigest() == want
    assert hash_file(tee) == (want, length)
    assert _sink_hash(sink) == (want, length)


def test_capture_keeps_the_terminal(tmp_path):
    """Stdout needs no capture: it is shim's own terminal (here a pty); stderr's tee file
    needs capture, and the delegate still sees a terminal there (a pty of shim's)."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(shim_command()[0], shim_command() + [
            "--stderr-path", str(tmp_path / "err"), "--", "sh", "-c",
            "test -t 1 && echo stdout-is-a-tty; test -t 2 && echo stderr-is-a-tty-and-teed >&2"],
            base_env())
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert b"stdout-is-a-tty" in out
    assert b"stderr-is-a-tty-and-teed" in out
    assert (tmp_path / "err").read_bytes() == b"stderr-is-a-tty-and-teed\r\n"  # a tty's line end


def test_tee_files_append_and_make_their_directory(tmp_path):
    out, err = tmp_path / "logs" / "step" / "stdout", tmp_path / "logs" / "step" / "stderr"
    for i in (1, 2):
        r = subprocess.run(shim_command() + ["--stdout-path", str(out), "--stderr-path", str(err),
                                             "--", "sh", "-c", f"echo out{i}; echo err{i} >&2"],
                           env=base_env(), capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout == b"out%d\n" % i and r.stderr == b"err%d\n" % i
    assert out.read_bytes() == b"out1\nout2\n" and err.read_bytes() == b"err1\nerr2\n"


def test_unwritable_tee_file_is_a_setup_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = subprocess.run(shim_command() + ["--stdout-path", str(blocker / "x"), "--", "true"],
                       env=base_env(), capture_output=True, timeout=30)
    assert r.returncode == 118 and r.stderr.count(b"\n") == 1 and b"tee file" in r.stderr


def test_closed_console_still_feeds_the_sinks(tmp_path):
    """shim started with stdout closed: the sink still gets every line, nothing else breaks."""
    sink = tmp_path / "s.jsonl"
    r = subprocess.run(shim_command() + ["--log-sink", f"file://{sink}", "--", "sh", "-c",
                                         "echo a; echo b >&2; echo c"],
                       env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=30, preexec_fn=lambda: __import__("os").close(1))
    assert r.returncode == 0 and r.stderr == b"b\n"
    lines = [json.loads(x) for x in sink.read_text().splitlines()]
    assert [x["line"] for x in lines if x["stream"] == "stdout"] == ["a", "c"]
    assert [x["line"] for x in lines if x["stream"] == "stderr"] == ["b"]
