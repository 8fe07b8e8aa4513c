"""`shim explain`: every source kind of a value, the env diff with steps (names only, never a
secret value), exec/supervise reasons, the delegate and how it was found, files, hooks, waits,
no side effects, every config error, and the run's own exit code."""

import json
import subprocess

from shim.errors import EXIT_NOT_FOUND, EXIT_USAGE
from support import base_env, shim_command


def explain(args, env=None):
    return subprocess.run(shim_command() + ["explain"] + args, env=env or base_env(),
                          capture_output=True, timeout=60)


def as_json(args, env=None):
    r = explain(["--format", "json"] + args, env)
    return r, json.loads(r.stdout)


def _options(report):
    return {row["option"]: row for row in report["options"]}


def test_every_source_kind_of_a_value(tmp_path):
    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps({
        "supervise": {"timeout": "40s"},
        "steps": {"poll_interval": "250ms"},
        "profiles": {"kubernetes": {"supervise": {"stop_delay": "15s"}}}}))
    env = base_env(SHIM_HOOK_TIMEOUT="9s", SHIM_RUNTIME="kubernetes")
    r, report = as_json(["--config", str(cfg), "--grace", "3s", "--", "true"], env)
    assert r.returncode == 0, r.stderr
    opts = _options(report)
    assert (opts["--grace"]["source"], opts["--grace"]["where"], opts["--grace"]["value"]) == \
        ("flag", "--grace", 3.0)
    assert (opts["--hook-timeout"]["source"], opts["--hook-timeout"]["where"]) == \
        ("env", "SHIM_HOOK_TIMEOUT")
    assert (opts["--timeout"]["source"], opts["--timeout"]["where"]) == \
        ("config", "$.supervise.timeout")
    assert opts["--poll-interval"]["value"] == 0.25
    assert (opts["--stop-delay"]["source"], opts["--stop-delay"]["where"]) == \
        ("profile", "$.profiles.kubernetes.supervise.stop_delay")
    assert opts["--stop-delay"]["value"] == 15.0
    assert (opts["--hook-failure"]["source"], opts["--hook-failure"]["value"]) == \
        ("default", "abort")
    assert "--wait-for" not in opts  # unset and empty by default: not listed
    assert report["runtime"]["runtime"] == "kubernetes"
    # the stop delay keeps shim resident: supervise, with that reason
    assert report["mode"] == "supervise"
    assert "$.supervise.timeout" in report["mode_reasons"]


def test_env_diff_names_each_step_and_never_a_value(tmp_path):
    envfile = tmp_path / "app.env"
    envfile.write_text("FROM_FILE=file-value-Kx1\nDATABASE_URL=postgres://u:pw-Kx2@db/app\n")
    env = base_env(OLD="old-value", DROP_ME="drop-value", SHIM_VAULT_TOKEN="tok-Kx3",
                   API_KEY="ref+vault://secret/app#/password")
    r, report = as_json(["--env-file", str(envfile), "--env", "GREETING=hello-Kx4",
                         "--prepend-env", "PATH=/opt/bin", "--unset-env", "DROP_ME",
                         "--", "env"], env)
    assert r.returncode == 0, r.stderr
    diff = report["environment"]
    added = {row["name"]: row["steps"] for row in diff["added"]}
    removed = {row["name"]: row["steps"] for row in diff["removed"]}
    changed = {row["name"]: row["steps"] for row in diff["changed"]}
    assert added["FROM_FILE"] == [f"env file {envfile}"]
    assert added["GREETING"] == ["--env GREETING (set)"]
    assert "--prepend-env PATH (prepend)" in changed["PATH"]
    assert removed["DROP_ME"] == ["--unset-env DROP_ME (unset)"]
    assert any(step.startswith("hygiene") for step in removed["SHIM_VAULT_TOKEN"])
    assert any(step.startswith("reference") for step in changed["API_KEY"])
    assert "OLD" not in added and "OLD" not in changed  # untouched
    refs = [ref for row in report["references"] for ref in row["refs"]]
    assert refs == ["ref+vault://secret/app#/password"]  # as written
    for secret in (b"file-value-Kx1", b"pw-Kx2", b"tok-Kx3", b"hello-Kx4", b"drop-value"):
        assert secret not in r.stdout and secret not in r.stderr
    text = explain(["--env-file", str(envfile), "--env", "GREETING=hello-Kx4", "--", "env"], env)
    assert text.returncode == 0 and b"GREETING" in text.stdout and b"hello-Kx4" not in text.stdout


def test_delegate_and_how_it_was_found(tmp_path):
    r, report = as_json(["--", "sh", "-c", "true"])
    assert report["delegate"]["argv"] == ["sh", "-c", "true"]
    assert report["delegate"]["found_by"] == "args after '--'"
    assert report["delegate"]["path"].endswith("/sh")
    assert report["mode"] == "exec" and report["mode_reasons"] == []
    r, report = as_json([], base_env(SHIM_ENTRYPOINT="sleep 1"))
    assert report["delegate"]["argv"] == ["sleep", "1"]
    assert report["delegate"]["found_by"] == "SHIM_ENTRYPOINT"
    r, report = as_json(["--commands", '{"serve": ["true", "--serve"]}', "--", "serve", "x"])
    assert report["delegate"]["argv"] == ["true", "--serve", "x"]
    assert "commands map" in report["delegate"]["found_by"]


def test_the_runs_own_exit_code():
    r, report = as_json(["--", "no-such-program-xyz"])
    assert r.returncode == EXIT_NOT_FOUND
    assert report["exit_code"] == EXIT_NOT_FOUND
    assert report["delegate"]["path"] is None
    r = explain(["--exec", "--timeout", "5s", "--", "true"])
    assert r.returncode == EXIT_USAGE and b"--timeout" in r.stderr


def test_no_side_effects(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "10-touch"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path / 'hook-ran'}\n")
    hook.chmod(0o755)
    written = [tmp_path / "result.json", tmp_path / "secret.txt", tmp_path / "post"]
    r, report = as_json(["--pre-hooks", str(hooks), "--result-file", str(written[0]),
                         "--secret-file", f"{written[1]}=ref+file://{tmp_path / 'src'}",
                         "--post-file", str(written[2]),
                         "--wait-for", "tcp://127.0.0.1:9", "--wait-file", str(tmp_path / "w"),
                         "--", "touch", str(tmp_path / "ran")])
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in written)
    assert not (tmp_path / "ran").exists() and not (tmp_path / "hook-ran").exists()
    assert report["hooks"]["pre"] == [str(hook)]
    paths = {f["path"]: f for f in report["files"]}
    assert paths[str(written[1])]["mode"] == "0400" or paths[str(written[1])]["mode"]
    assert str(written[0]) in paths and str(written[2]) in paths
    assert report["wait"]["conditions"] == ["tcp://127.0.0.1:9"]
    assert report["wait"]["files"] == [str(tmp_path / "w")]


def test_every_config_error_is_reported(tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"supervise": {"grace": "soon", "nope": 1},
                               "steps": {"wait_timeout": -1}}))
    r = explain(["--config", str(cfg), "--", "true"], base_env(SHIM_TIMEOUT="later"))
    assert r.returncode == EXIT_USAGE
    lines = r.stderr.decode().splitlines()
    joined = "\n".join(lines)
    assert "SHIM_TIMEOUT" in joined and "$.supervise.grace" in joined
    assert "$.supervise.nope" in joined and "$.steps.wait_timeout" in joined
    assert all(line.startswith("shim: ") for line in lines)
    r = explain(["--format", "json", "--config", str(cfg), "--", "true"])
    assert len(json.loads(r.stdout)["errors"]) == 3


def test_lifecycle_errors_are_all_reported():
    r = explain(["--wait-for", "ftp://x", "--wait-for", "tcp://h", "--stop-delay", "0",
                 "--breakpoint-on-failure", "--", "true"])
    assert r.returncode == EXIT_USAGE
    text = r.stderr.decode()
    for needle in ("unknown URL scheme", "has no port", "--stop-delay", "debug directory"):
        assert needle in text, text


def test_bad_explain_flags():
    r = explain(["--format", "yaml", "--", "true"])
    assert r.returncode == EXIT_USAGE
    assert len(r.stderr.decode().splitlines()) == 1 and b"--format" in r.stderr


def test_a_real_run_logs_the_provenance_at_debug_and_reports_it(tmp_path):
    from support import run

    report = tmp_path / "report.json"
    env = base_env(OLD="x", SHIM_VAULT_TOKEN="tok-Zz9")
    r = run(["--log-level", "debug", "--report", str(report), "--env", "GREETING=hello-Zz8",
             "--unset-env", "OLD", "--", "true"], env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.decode().splitlines()
    assert "shim: env GREETING added by --env GREETING (set)" in lines
    assert "shim: env OLD removed by --unset-env OLD (unset)" in lines
    assert any(line.startswith("shim: env SHIM_VAULT_TOKEN removed by hygiene") for line in lines)
    found = json.loads(report.read_text())["environment"]
    assert {"name": "GREETING", "steps": ["--env GREETING (set)"]} in found["added"]
    text = report.read_text().encode() + r.stderr
    assert b"hello-Zz8" not in text and b"tok-Zz9" not in text
    quiet = run(["--env", "GREETING=hello", "--", "true"])
    assert b"env GREETING" not in quiet.stderr  # warn level: no provenance lines


def test_templates_and_identity(tmp_path):
    src = tmp_path / "app.conf.tmpl"
    src.write_text("x=${X}\n")
    r, report = as_json(["--template", f"{src}={tmp_path / 'app.conf'}", "--umask", "027",
                         "--", "true"])
    assert r.returncode == 0, r.stderr
    files = {f["path"]: f for f in report["files"]}
    assert files[str(tmp_path / "app.conf")]["what"] == f"template from {src}"
    assert not (tmp_path / "app.conf").exists()
    assert report["identity"]["--umask"] == "027"


def test_references_are_shown_as_written_and_urls_without_credentials():
    r, report = as_json(["--secret", "DB=ref+vault://secret/db?version=2#/password",
                         "--secret", "H=ref+https://user:hunter2@config.example/app.json?key=k#/a", "--", "true"])
    assert r.returncode == 0, r.stderr
    shown = _options(report)["--secret"]["value"]
    assert shown["DB"] == "ref+vault://secret/db?version=2#/password"  # path, version, pointer
    assert b"hunter2" not in r.stdout + r.stderr and b"key=k" not in r.stdout + r.stderr
