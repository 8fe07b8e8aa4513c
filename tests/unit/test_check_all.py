"""`shim check` runs every validation a run does (shim.run.validate) and reports all errors."""

import json

import pytest

from shim.commands import check
from shim.errors import EXIT_USAGE

# (environment, what the one error says): each a run refuses with 125 before starting.
REFUSED = [
    ({"SHIM_SECRET": "X=ref+foo://bar"}, 'unknown scheme "foo"'),
    ({"SHIM_SECRET": "X=ref+vault://kv/a?regoin=1"}, 'unknown query parameter "regoin"'),
    ({"SHIM_SECRET": "X=ref+http://127.0.0.1:0/x"}, "port 0 is out of range"),
    ({"SHIM_ENV_FROM": "ref+vault://kv/a#/a#b"}, "a second '#'"),
    ({"APP_DB": "ref+foo://bar"}, "variable APP_DB"),  # a reference in the environment
    ({"SHIM_LOG_SINK": "ftp://x"}, "unknown sink scheme ftp://"),
    ({"SHIM_STDIN_FROM": "http://x"}, 'unknown address scheme "http"'),
    ({"SHIM_STDOUT_TO": "tcp://h"}, "tcp:// needs a host and a port"),
    ({"SHIM_HEARTBEAT": "ftp://x"}, "option --heartbeat"),
    ({"SHIM_STATUS_URL": "tcp://h:1"}, "option --status-url"),
    ({"SHIM_STATSD_GATEWAY": "nohost"}, "option --statsd-gateway"),
    ({"SHIM_MODE": "exec", "SHIM_TIMEOUT": "5"}, "cannot be combined with SHIM_TIMEOUT"),
    ({"SHIM_REFRESH": "10s", "SHIM_SECRET_FILE": "/t/x=ref+env://A", "SHIM_REFRESH_SIGNAL": "NOPE"},
     "NOPE"),
    ({"SHIM_ENV": "A=${"}, "unterminated ${"),
    ({"SHIM_REPORT": "ftp://x/y"}, 'unsupported URL scheme "ftp://"'),
    ({"SHIM_SECRET": "X=ref+vault://kv/a", "VAULT_ADDR": "http://h:99999"},
     'VAULT_ADDR "http://h:99999" is not a usable URL: port 99999 is out of range'),
    ({"SHIM_SECRET": "X=ref+awsssm://x", "AWS_ENDPOINT_URL": "http://[::1"},
     "AWS_ENDPOINT_URL"),
    ({"SHIM_SECRET": "X=ref+s3://b/k", "AWS_REGION": "EU_WEST"}, 'malformed AWS region "EU_WEST"'),
    ({"SHIM_USER": "no-such-user-16"}, 'no user "no-such-user-16"'),
    ({"SHIM_CAP_KEEP": "CAP_BOGUS"}, 'unknown capability "CAP_BOGUS"'),
    ({"SHIM_WAIT_FOR": "ftp://x"}, 'unknown URL scheme "ftp"'),
    ({"SHIM_WAIT_FOR": "tcp://h:x"}, 'port "x" is not a number'),  # not "could not be cast"
    ({"SHIM_TEMPLATE": "/nonexistent/t.tmpl=/tmp/out"}, "read template /nonexistent/t.tmpl"),
    ({"SHIM_TEMPLATE": "ref+foo://x=/tmp/out"}, "malformed source reference"),
    ({"SHIM_LOG_SINK": "tcp://h:x"}, 'cannot read URL: port "x" is not a number'),
]


@pytest.mark.parametrize("environ, cause", REFUSED)
def test_check_refuses_what_a_run_refuses(environ, cause, capfd):
    assert check.main([], environ) == EXIT_USAGE
    err = capfd.readouterr().err
    assert cause in err and err.count("\n") == 1 and err.startswith("shim: check "), err


def test_check_reports_every_error_not_the_first(tmp_path, capfd):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"logs": {"sinks": ["ftp://file-sink"]},
                               "secrets": [{"ref": "ref+foo://x", "env": "A"},
                                           {"ref": "ref+vault://kv/b?bad=1", "env": "B"}]}))
    environ = {"SHIM_CONFIG": str(cfg), "SHIM_TIMEOUT": "zz", "SHIM_SECRET": "X=ref+foo://bar",
               "SHIM_HEARTBEAT": "ftp://x", "SHIM_STDIN_FROM": "http://x",
               "SHIM_STDOUT_TO": "ftp://y"}
    assert check.main([], environ) == EXIT_USAGE
    lines = capfd.readouterr().err.splitlines()
    for needle in ("SHIM_TIMEOUT", "SHIM_SECRET X", "$.secrets.items[0]", "$.secrets.items[1]",
                   "ftp://", "option --heartbeat", "option --stdin-from", "option --stdout-to"):
        assert any(needle in line for line in lines), (needle, lines)
    assert len(lines) == 8 and all(line.startswith("shim: check ") for line in lines), lines


def test_a_good_configuration_is_ok(tmp_path, capfd):
    environ = {"SHIM_SECRET": "X=ref+vault://kv/a#/k", "SHIM_LOG_SINK": "tcp://127.0.0.1:5170",
               "SHIM_STDIN_FROM": "tcp-listen://127.0.0.1:7000", "SHIM_HEARTBEAT": "tcp://h:1",
               "SHIM_STATSD_GATEWAY": "127.0.0.1:8125"}
    assert check.main([], environ) == 0
    out = capfd.readouterr()
    assert out.out == "environment: ok\n" and out.err == ""


def test_a_template_with_bad_syntax_is_found_without_writing(tmp_path, capfd):
    src, dest = tmp_path / "app.tmpl", tmp_path / "app.conf"
    src.write_text("password=ref+vault://kv/a#/pw+\nname=${NAME:-x\n")
    assert check.main([], {"SHIM_TEMPLATE": f"{src}={dest}"}) == EXIT_USAGE
    err = capfd.readouterr().err
    assert f"render template {src}: line " in err and "unterminated ${" in err
    assert not dest.exists()
