"""`shim doctor`: one ok/warn/fail line per check with a fix, or JSON; exit 118 when a check
fails.  Broken machines are made for real: a read-only mount, uid 65534, no /proc (mount
namespaces the test creates)."""

import json
import shlex
import subprocess

from shim.errors import EXIT_SETUP
from support import base_env, require_tool, shim_command

CHECKS = {"/proc", "reaping", "trust store", "DNS", "clock", "privileges", "memory",
          "writable TMPDIR"}


def doctor(args, env=None, wrap=()):
    return subprocess.run(list(wrap) + shim_command() + ["doctor"] + args, env=env or base_env(),
                          capture_output=True, timeout=60)


def in_mount_ns(script, env=None):
    """Run `script` (sh) in a new mount namespace; SHIM is the shim command line."""
    require_tool("unshare")
    shim = " ".join(shlex.quote(a) for a in shim_command())
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script.replace("SHIM", shim)], env=env or base_env(),
                          capture_output=True, timeout=60)


def _checks(stdout):
    return {c["check"]: c for c in json.loads(stdout)["checks"]}


def test_text_lines_and_json():
    r = doctor([])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines and all(line.split()[0] in ("ok", "warn", "fail") for line in lines)
    assert all("fix:" in line for line in lines if not line.startswith("ok"))
    r = doctor(["--format", "json"])
    checks = _checks(r.stdout)
    assert CHECKS <= set(checks)
    assert all(c["status"] in ("ok", "warn", "fail") for c in checks.values())
    assert json.loads(r.stdout)["summary"]["fail"] == 0


def test_read_only_configured_path_fails(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    r = in_mount_ns(f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
                    f"SHIM doctor --format json --result-file {ro}/result.json "
                    f"--post-file {tmp_path}/post")
    assert r.returncode == EXIT_SETUP, r.stderr
    checks = _checks(r.stdout)
    assert checks["writable --result-file"]["status"] == "fail"
    assert "read-only" in checks["writable --result-file"]["detail"]
    assert checks["writable --result-file"]["fix"]
    assert checks["writable --post-file"]["status"] == "ok"


def test_read_only_tmp_is_a_warning(tmp_path):
    r = in_mount_ns(f"mount -t tmpfs -o ro tmpfs {tmp_path} && TMPDIR={tmp_path} "
                    "SHIM doctor --format json")
    assert r.returncode == 0, r.stderr
    assert _checks(r.stdout)["writable TMPDIR"]["status"] == "warn"


def test_as_uid_65534(tmp_path):
    require_tool("setpriv")
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    wrap = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all"]
    r = doctor(["--format", "json", "--debug-dir", str(root_only / "debug")], wrap=wrap)
    assert r.returncode == EXIT_SETUP, r.stderr
    checks = _checks(r.stdout)
    assert checks["writable --debug-dir"]["status"] == "fail"
    assert "uid 65534" in checks["privileges"]["detail"]
    assert "0 effective capabilities" in checks["privileges"]["detail"]


def test_without_proc():
    r = in_mount_ns("umount -l /proc && SHIM doctor --format json")
    assert r.returncode == EXIT_SETUP, r.stderr
    checks = _checks(r.stdout)
    assert checks["/proc"]["status"] == "fail" and "mount proc" in checks["/proc"]["fix"]
    assert checks["privileges"]["status"] == "warn"
    r = in_mount_ns("umount -l /proc && SHIM doctor")
    assert r.stdout.decode().startswith("fail /proc: not mounted")


def test_no_resolver_configuration_is_a_warning(tmp_path):
    empty = tmp_path / "resolv.conf"
    empty.write_text("# nothing\n")
    r = in_mount_ns(f"mount --bind {empty} /etc/resolv.conf && SHIM doctor --format json")
    assert r.returncode == 0, r.stderr
    dns = _checks(r.stdout)["DNS"]
    assert dns["status"] == "warn" and dns["fix"]


def test_bad_format_is_a_usage_error():
    r = doctor(["--format", "yaml"])
    assert r.returncode == 125
    assert len(r.stderr.decode().splitlines()) == 1 and b"--format" in r.stderr


def test_every_configured_file_is_checked(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    src = tmp_path / "t.tmpl"
    src.write_text("x\n")
    r = in_mount_ns(f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
                    f"SHIM doctor --format json --report {ro}/report.json "
                    f"--log-sink file://{ro}/log.jsonl --template {src}={ro}/app.conf "
                    f"--secret-file {tmp_path}/ok.txt=ref+file://{src}")
    assert r.returncode == EXIT_SETUP, r.stderr
    checks = _checks(r.stdout)
    for name in ("writable --report", f"writable --log-sink {ro}/log.jsonl",
                 f"writable template {ro}/app.conf"):
        assert checks[name]["status"] == "fail", (name, checks)
    assert checks[f"writable secret target {tmp_path}/ok.txt"]["status"] == "ok"
