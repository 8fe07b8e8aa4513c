"""Change actions with --refresh (issue 19, rule 4) in whole runs against real OpenBao over
TLS: `restart` when an env secret changes in OpenBao while the delegate runs (the new value
is seen, shim's PID unchanged, the result record and the report count one restart);
`exec:CMD` after a file changed; a template re-rendered and the delegate signalled; a
refresh during an OpenBao outage (a loopback forwarder we cut) keeps the delegate running.
Runs wait on the delegate's own output lines (events), each with a generous deadline."""

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
from test_run import hosts, vault_env  # noqa: F401  (hosts: a fixture)

from support import require_tool, shim_command


class Shim:
    """shim under `unshare` with vault.shim.test -> 127.0.0.1 (as test_run.run_shim), started
    in the background; `line()` waits for the delegate's next stdout line."""

    def __init__(self, args, env, hosts, mask=False, cwd=None):  # noqa: F811
        require_tool("unshare")
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
               str(hosts)] + shim_command() + ([] if mask else ["--no-mask-secrets"]) + list(args)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        self.buf = b""
        self.err = b""

    def line(self, timeout=30.0):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], max(0, left))
            if not ready:
                raise AssertionError(f"no line within {timeout}s; stderr: {self.err!r}")
            for stream in ready:
                chunk = os.read(stream.fileno(), 65536)
                if stream is self.proc.stderr:
                    self.err += chunk
                elif not chunk:
                    raise AssertionError(f"stdout closed; stderr: {self.err!r}")
                else:
                    self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def stderr_until(self, needle, timeout=30.0):
        end = time.monotonic() + timeout
        while needle not in self.err:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(0, left))
            if not ready:
                raise AssertionError(f"{needle!r} not on stderr within {timeout}s: {self.err!r}")
            self.err += os.read(self.proc.stderr.fileno(), 65536)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        self.err += err
        return self.proc.returncode


@pytest.fixture
def rotating(bao):
    name = f"rot-{os.getpid()}-{time.monotonic_ns()}"
    bao.api("POST", f"kv1/{name}", {"pw": "first-value-1"})
    return name


def test_restart_on_env_change_keeps_shim_pid_and_counts(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    record, report = tmp_path / "result.json", tmp_path / "report.json"
    shim = Shim(["--secret", f"DB=ref+vault://kv1/{rotating}#/pw", "--refresh", "1s",
                 "--on-change", "restart", "--grace", "5s", "--result-file", str(record),
                 "--report", str(report), "--",
                 "sh", "-c", 'echo "DB=$DB PPID=$PPID PID=$$"; exec sleep 60'],
                vault_env(bao, ca), hosts)
    try:
        first = dict(kv.split("=", 1) for kv in shim.line().split())
        assert first["DB"] == "first-value-1" and first["PPID"] == str(shim.proc.pid)
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        second = dict(kv.split("=", 1) for kv in shim.line(60).split())
        assert second["DB"] == "second-value-2"
        assert second["PPID"] == str(shim.proc.pid) and second["PID"] != first["PID"]
    finally:
        code = shim.stop()
    assert code == 143, shim.err
    counters = json.loads(record.read_text())["counters"]
    assert counters["restarts"] == 1
    assert json.loads(report.read_text())["counters"]["restarts"] == 1


def test_restart_keeps_the_masked_output_flowing(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    """With masking (the default) output goes through shim's capture pipes: the restarted
    delegate writes into the same ones, and its new value is masked too."""
    shim = Shim(["--secret", f"DB=ref+vault://kv1/{rotating}#/pw", "--refresh", "1s",
                 "--on-change", "restart", "--", "sh", "-c", 'echo "DB=$DB PID=$$"; exec sleep 60'],
                vault_env(bao, ca), hosts, mask=True)
    try:
        first = dict(kv.split("=", 1) for kv in shim.line().split())
        assert first["DB"] == "***"
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        second = dict(kv.split("=", 1) for kv in shim.line(60).split())
        assert second["DB"] == "***" and second["PID"] != first["PID"]
    finally:
        assert shim.stop() == 143
    assert b"second-value-2" not in shim.err


def test_exec_command_after_a_file_change(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    out, copy = tmp_path / "s/pw", tmp_path / "copy"
    cmd = f"exec:sh -c 'cp {out} {copy}; echo \"new: $(cat {out})\"; echo copied >&2'"
    shim = Shim(["--secret-file", f"{out}=ref+vault://kv1/{rotating}#/pw", "--refresh", "1s",
                 "--on-change", cmd, "--", "sh", "-c", "echo started; exec sleep 60"],
                vault_env(bao, ca), hosts, mask=True)
    try:
        assert shim.line() == "started"
        assert out.read_text() == "first-value-1" and not copy.exists()
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        shim.stderr_until(b"copied", 60)  # the command's stdout goes to shim's stderr
        assert copy.read_text() == "second-value-2" == out.read_text()
    finally:
        assert shim.stop() == 143
    assert b"new: ***" in shim.err and b"second-value-2" not in shim.err  # masked as hooks


def test_a_relative_exec_command_is_the_start_directorys(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    # shim leaves its start directory once the delegate runs (as dumb-init does): the
    # command `./reload.sh` is still the one in the directory shim was started in.
    out, copy = tmp_path / "s/pw", tmp_path / "copy"
    reload = tmp_path / "reload.sh"
    reload.write_text(f"#!/bin/sh\ncp {out} {copy}\necho reloaded >&2\n")
    reload.chmod(0o755)
    shim = Shim(["--secret-file", f"{out}=ref+vault://kv1/{rotating}#/pw", "--refresh", "1s",
                 "--on-change", "exec:./reload.sh", "--", "sh", "-c", "echo started; exec sleep 60"],
                vault_env(bao, ca), hosts, mask=True, cwd=tmp_path)
    try:
        assert shim.line() == "started"
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        shim.stderr_until(b"reloaded", 60)
        assert copy.read_text() == "second-value-2"
    finally:
        assert shim.stop() == 143


def test_template_rerendered_and_signalled(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    src, dst = tmp_path / "t.tmpl", tmp_path / "app.conf"
    src.write_text(f"pw=ref+vault://kv1/{rotating}#/pw+ host=${{HOST:-h}}\n")
    script = f'trap "cat {dst}" HUP; cat {dst}; while :; do sleep 0.1; done'
    shim = Shim(["--template", f"{src}={dst}", "--refresh", "1s", "--", "sh", "-c", script],
                vault_env(bao, ca), hosts)
    try:
        assert shim.line() == "pw=first-value-1 host=h"
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        assert shim.line(60) == "pw=second-value-2 host=h"  # rewritten, then SIGHUP
    finally:
        shim.stop()


class Forwarder:
    """A loopback TCP forwarder to OpenBao's TLS port that the test can cut (an outage)."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.up = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.up = False
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.cut()
        self.listener.close()


def test_refresh_during_an_outage_keeps_the_delegate(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    fwd = Forwarder(bao.tls_port)
    record = tmp_path / "result.json"
    env = vault_env(bao, ca)
    env["VAULT_ADDR"] = f"https://vault.shim.test:{fwd.port}"
    shim = Shim(["--secret", f"DB=ref+vault://kv1/{rotating}#/pw", "--secret-file",
                 f"{tmp_path}/f=ref+vault://kv1/{rotating}#/pw", "--refresh", "1s",
                 "--on-change", "restart", "--fetch-deadline", "3s", "--result-file", str(record),
                 "--", "sh", "-c", 'echo "DB=$DB PID=$$"; exec sleep 60'], env, hosts)
    try:
        first = shim.line()
        assert first.startswith("DB=first-value-1 ")
        fwd.cut()
        shim.stderr_until(b"keeping the previous values", 60)
        assert shim.proc.poll() is None  # the delegate (and shim) still run
        assert (tmp_path / "f").read_text() == "first-value-1"
    finally:
        code = shim.stop()
        fwd.close()
    assert code == 143
    counters = json.loads(record.read_text())["counters"]
    assert counters["restarts"] == 0 and counters["refresh"]["failures"] >= 1
    assert b"first-value-1" not in shim.err


def test_restart_with_references_inside_env_from(bao, ca, hosts, rotating, tmp_path):  # noqa: F811
    """The second round (references inside --env-from contents) is refreshed too."""
    dotenv = tmp_path / "app.env"
    dotenv.write_text(f"DSN=pg://u:ref+vault://kv1/{rotating}#/pw+@h\nPLAIN=1\n")
    shim = Shim(["--env-from", f"ref+file://{dotenv}", "--refresh", "1s", "--on-change",
                 "restart", "--", "sh", "-c", 'echo "DSN=$DSN PLAIN=$PLAIN"; exec sleep 60'],
                vault_env(bao, ca), hosts)
    try:
        assert shim.line() == "DSN=pg://u:first-value-1@h PLAIN=1"
        bao.api("POST", f"kv1/{rotating}", {"pw": "second-value-2"})
        assert shim.line(60) == "DSN=pg://u:second-value-2@h PLAIN=1"
    finally:
        assert shim.stop() == 143
    assert b"restarting" not in shim.err or shim.err.count(b"restarting") <= 1
