"""Files written after the delegate ran (report, result record, termination message, post
file) never change its exit code: a failed write is a warning and a counter in the record."""

import json
import socket

import pytest

from support import run

MISSING = "/nonexistent-dir/shim-out"
EXIT_4 = ["--", "sh", "-c", "exit 4"]


def warnings(stderr):
    lines = stderr.decode().splitlines()
    assert all("Traceback" not in line for line in lines)
    return [line for line in lines if "the exit code stays" in line]


@pytest.mark.parametrize("flags", [
    ["--report", MISSING + "/report.json"],
    ["--result-file", MISSING + "/result.json"],
    ["--termination-path", MISSING + "/termination-log"],
    ["--post-file", MISSING + "/step"],
])
def test_an_unwritable_output_keeps_the_delegates_code(flags):
    r = run(flags + EXIT_4)
    assert r.returncode == 4, r.stderr  # was 118 (setup error) after the delegate had run
    (line,) = warnings(r.stderr)
    assert MISSING in line and "no such file or directory" in line


def test_success_stays_success():
    r = run(["--report", MISSING + "/r.json", "--post-file", MISSING + "/p", "--", "true"])
    assert r.returncode == 0 and len(warnings(r.stderr)) == 2


def test_the_record_counts_failed_writes(tmp_path):
    term = tmp_path / "termination-log"
    r = run(["--report", MISSING + "/r.json", "--result-file", MISSING + "/result.json",
             "--termination-path", str(term)] + EXIT_4)
    assert r.returncode == 4 and len(warnings(r.stderr)) == 2
    record = json.loads(term.read_text())
    assert record["delegate_exit_code"] == 4 and record["exit_code"] == 4
    assert record["reason"] == "exited" and record["error"] is None
    assert record["counters"]["write_failures"] == 2  # the report and the result file


def test_a_report_endpoint_that_is_down_is_counted(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = tmp_path / "result.json"
    r = run(["--report", f"http://127.0.0.1:{port}/r", "--result-file", str(result)] + EXIT_4)
    assert r.returncode == 4
    (line,) = warnings(r.stderr)
    assert f"run report to http://127.0.0.1:{port}/r" in line and "refused" in line
    assert json.loads(result.read_text())["counters"]["write_failures"] == 1
