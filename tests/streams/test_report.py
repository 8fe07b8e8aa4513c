"""The run report: one JSON document at exit; argv[0] only, never arguments or env values."""

import json
import subprocess

from support import base_env, shim_command


def test_report_file(tmp_path):
    report = tmp_path / "report.json"
    r = subprocess.run(shim_command() + ["--report", str(report), "--log-sink",
                                         f"file://{tmp_path}/s.jsonl", "--", "sh", "-c",
                                         "echo hi; exit 7", "TOPSECRET-ARG"],
                       env=base_env(API_TOKEN="TOPSECRET-ENV"), capture_output=True, timeout=30)
    assert r.returncode == 7
    text = report.read_text()
    assert "TOPSECRET" not in text
    doc = json.loads(text)
    assert doc["delegate"] == {"argv0": "sh"}
    assert doc["exit_code"] == 7 and doc["reason"] == "exited" and doc["signal"] is None
    assert doc["shim"]["version"]
    assert "delegate" in doc["phases_ms"]
    assert doc["counters"]["logs"]["sinks"][f"file://{tmp_path}/s.jsonl"]["records"] == 1
    assert "runtime" in doc and "evidence" in doc["runtime"]


def test_report_and_metrics_after_a_failed_fetch(tmp_path):
    """The run ends before the delegate: the report and shim's own metrics still go out."""
    import socket

    from shim.errors import EXIT_FETCH

    gw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gw.bind(("127.0.0.1", 0))
    gw.settimeout(5)
    report = tmp_path / "report.json"
    r = subprocess.run(shim_command() + [
        "--report", str(report), "--statsd-gateway", f"127.0.0.1:{gw.getsockname()[1]}",
        "--secret", f"X=ref+file://{tmp_path}/missing", "--", "true"],
        env=base_env(), capture_output=True, timeout=30)
    assert r.returncode == EXIT_FETCH
    doc = json.loads(report.read_text())
    assert doc["reason"] == "fetch-failed" and doc["exit_code"] == EXIT_FETCH
    assert "fetch" in doc["phases_ms"]
    lines = gw.recv(65535).split(b"\n")
    gw.close()
    assert b"shim.exit_code:%d|g" % EXIT_FETCH in lines
    assert any(x.startswith(b"shim.phase.duration:") and b"phase:fetch" in x for x in lines)
