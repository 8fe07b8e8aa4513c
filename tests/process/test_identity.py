"""Identity (issue 18), real processes as root (CI runs as root): the delegate's
/proc/self/status, limits, umask, capabilities that let a non-root server bind :80,
--own over symlinks and mounts, files written for the delegate, both modes, shim's own
identity unchanged.  Named users come from an image-like /etc bound over the host's in a
private mount namespace (unshare -m), so the host's account files are never touched."""

import os
import shlex
import subprocess
import sys

import pytest

from support import base_env, require_tool, run, shim_command

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:4321:4000:App:/home/app:/bin/sh\n"
GROUP = "root:x:0:\nappgrp:x:4000:\naudio:x:29:app\nvideo:x:44:app\nstaff:x:50:\n"
NET_BIND_SERVICE = 10


@pytest.fixture(autouse=True)
def as_root():
    if os.geteuid() != 0:
        pytest.fail("the identity tests run as root (CI does); run them with sudo")


@pytest.fixture
def world():
    """A directory the dropped delegate can traverse (pytest's tmp_path is 0700 root)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="shim-identity-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def status(text):
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
            for line in text.splitlines() if ":" in line}


def in_image(tmp_path, args, env=None, **kw):
    """Run shim with tmp_path's passwd/group bound over /etc's, in a private mount ns."""
    require_tool("unshare")
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    cmd = " ".join(shlex.quote(w) for w in shim_command() + list(args))
    script = (f"mount --make-rprivate / && mount --bind {etc}/passwd /etc/passwd && "
              f"mount --bind {etc}/group /etc/group && exec {cmd}")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], env=env or base_env(),
                          capture_output=True, timeout=60, **kw)


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_named_user_status_groups_caps_nnp(tmp_path, mode):
    r = in_image(tmp_path, [mode, "--user", "app", "--no-new-privileges", "--", "cat",
                            "/proc/self/status"])
    assert r.returncode == 0, r.stderr
    s = status(r.stdout.decode())
    assert s["Uid"].split() == ["4321"] * 4 and s["Gid"].split() == ["4000"] * 4
    assert sorted(s["Groups"].split()) == ["29", "4000", "44"]
    assert s["NoNewPrivs"] == "1"
    for cap in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
        assert int(s[cap], 16) == 0, cap


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_cap_keep_is_ambient_and_the_bounding_set_is_dropped(tmp_path, mode):
    r = run([mode, "--user", "4321:4321", "--cap-keep", "NET_BIND_SERVICE", "--", "cat",
             "/proc/self/status"])
    assert r.returncode == 0, r.stderr
    s = status(r.stdout.decode())
    assert s["Uid"].split() == ["4321"] * 4 and s["Groups"] == "4321"  # no entry: only GROUP
    for cap in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(s[cap], 16) == 1 << NET_BIND_SERVICE, (cap, s[cap])
    assert s["NoNewPrivs"] == "0"


def test_cap_drop_for_a_root_delegate():
    r = run(["--cap-drop", "NET_RAW,sys_admin", "--", "cat", "/proc/self/status"])
    s = status(r.stdout.decode())
    for cap in ("CapEff", "CapPrm", "CapBnd"):
        mask = int(s[cap], 16)
        assert not mask & (1 << 13) and not mask & (1 << 21) and mask & 1, (cap, s[cap])
    r = run(["--cap-drop", "all", "--", "cat", "/proc/self/status"])
    s = status(r.stdout.decode())
    assert s["Uid"].split()[0] == "0"
    assert all(int(s[c], 16) == 0 for c in ("CapEff", "CapPrm", "CapBnd"))


BIND80 = ("import socket, errno\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 80))\n"
          "    print('bound')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\n")


def _port80_free():
    import socket

    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 80))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_a_non_root_server_binds_port_80_only_with_net_bind_service(mode):
    assert _port80_free(), "127.0.0.1:80 is taken on this machine"
    python = os.path.realpath(sys.executable)  # a path user 4321 can reach (not under /root)
    if python.startswith("/root"):
        python = "/usr/bin/python3"
    kept = run([mode, "--user", "4321", "--cap-keep", "NET_BIND_SERVICE", "--", python, "-c",
                BIND80])
    assert kept.stdout.decode().strip() == "bound", kept.stderr
    dropped = run([mode, "--user", "4321", "--", python, "-c", BIND80])
    assert dropped.stdout.decode().strip() == "EACCES", dropped.stderr


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_limits_and_umask(mode):
    r = run([mode, "--user", "4321", "--rlimit", "nofile=1000:2000", "--rlimit", "core=0",
             "--umask", "027", "--", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; umask"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["1000", "2000", "0", "0027"]


def test_shim_keeps_its_own_identity_while_supervising(world):
    fifo = world / "go"
    os.mkfifo(fifo, 0o666)
    proc = subprocess.Popen(shim_command() + ["--supervise", "--user", "4321", "--rlimit",
                                              "nofile=100", "--", "sh", "-c", f"cat {fifo}"],
                            env=base_env(), stdout=subprocess.PIPE)
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            own = status(f.read())
        # Wait until the delegate is running (the FIFO has a reader), then look at shim.
        with open(fifo, "w") as w:
            with open(f"/proc/{proc.pid}/status") as f:
                own = status(f.read())
            with open(f"/proc/{proc.pid}/limits") as f:
                limits = f.read()
            w.write("done\n")
        assert own["Uid"].split()[0] == "0" and own["Gid"].split()[0] == "0"
        assert int(own["CapEff"], 16) != 0
        nofile = [line for line in limits.splitlines() if line.startswith("Max open files")][0]
        assert nofile.split()[3] != "100"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_home_and_user_as_gosu_sets_them(tmp_path):
    env = base_env(USER="root", LOGNAME="root", HOME="/root")
    r = in_image(tmp_path, ["--user", "app", "--", "sh", "-c", "echo $HOME $USER $LOGNAME"],
                 env=env)
    assert r.stdout.decode().split() == ["/home/app", "app", "app"], r.stderr
    r = in_image(tmp_path, ["--user", "app", "-e", "HOME=/data", "--", "sh", "-c", "echo $HOME"],
                 env=env)
    assert r.stdout.decode().strip() == "/data"
    r = run(["--user", "4321", "--", "sh", "-c", "echo $HOME"], env=env)
    assert r.stdout.decode().strip() == "/"  # no passwd entry


def test_own_never_follows_a_symlink_nor_crosses_a_mount(world):
    require_tool("unshare")
    tree, outside = world / "tree", world / "outside"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    (tree / "mnt").mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    (tree / "link").symlink_to(outside / "secret")
    (tree / "dirlink").symlink_to(outside)
    # The nested mount exists only inside this namespace: a tmpfs with a file in it.
    cmd = " ".join(shlex.quote(w) for w in shim_command() + [
        "--log-level", "info", "--user", "4321:4321", "--own", str(tree), "--", "sh", "-c",
        f"stat -c '%u:%g %n' {tree}/mnt/inner {tree}/sub/f; touch {tree}/sub/new"])
    script = (f"mount --make-rprivate / && mount -t tmpfs none {tree}/mnt && "
              f"echo i > {tree}/mnt/inner && {cmd}")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], env=base_env(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("0:0 "), lines  # inside the nested mount: not crossed
    assert lines[1].startswith("4321:4321 "), lines
    # tree, sub, sub/f, mnt (the mount point itself is on another fs: left), link, dirlink
    assert "own: 5 entries given to 4321:4321" in r.stderr.decode()
    assert os.lstat(tree / "link").st_uid == 4321  # the link itself (lchown)...
    assert os.stat(outside / "secret").st_uid == 0  # ...never what it points to
    assert os.stat(outside).st_uid == 0
    assert os.stat(tree / "sub" / "new").st_uid == 4321  # the delegate could write there
    # Again: already owned, nothing changes (find ! -user semantics).
    r2 = run(["--log-level", "info", "--user", "4321:4321", "--own", str(tree), "--", "true"])
    assert "own: 1 entries" in r2.stderr.decode() or "own: 0 entries" in r2.stderr.decode()


def test_own_on_a_missing_path_starts_nothing(tmp_path):
    marker = tmp_path / "ran"
    r = run(["--user", "4321", "--own", str(tmp_path / "nope"), "--", "touch", str(marker)])
    assert r.returncode == 125 and not marker.exists()
    assert r.stderr.decode().count("\n") == 1 and "no such file" in r.stderr.decode()


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_a_0400_secret_file_is_readable_by_the_dropped_delegate(world, mode):
    src = world / "src"
    src.write_text("s3cret")
    dest = world / "run" / "token"
    r = run([mode, "--no-mask-secrets", "--user", "4321", "--secret-file",
             f"{dest}=ref+file://{src}", "--", "cat", str(dest)]) if mode == "--exec" else \
        run([mode, "--user", "4321", "--secret-file", f"{dest}=ref+file://{src}", "--", "sh",
             "-c", f"cat {dest} >/dev/null && echo readable"])
    assert r.returncode == 0, r.stderr
    st = os.stat(dest)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (4321, 4321, 0o400)


def test_hooks_run_as_shim_unless_hooks_as_user(world):
    hooks = world / "pre"
    hooks.mkdir()
    hook = hooks / "10-id"
    hook.write_text("#!/bin/sh\nid -u >&2\n")
    hook.chmod(0o755)
    r = run(["--pre-hooks", str(hooks), "--user", "4321", "--", "true"])
    assert r.stderr.decode().split()[0] == "0", r.stderr
    r = run(["--pre-hooks", str(hooks), "--user", "4321", "--hooks-as-user", "--", "true"])
    assert r.stderr.decode().split()[0] == "4321", r.stderr


def test_a_non_root_shim_asked_to_become_another_user_starts_nothing(world):
    require_tool("setpriv")
    marker = world / "ran"
    world.chmod(0o777)
    # As uid 4321: the source tree through Debian's python3 (the venv lives under /root).
    shim = [os.environ["SHIM_BIN"]] if os.environ.get("SHIM_BIN") else \
        ["/usr/bin/python3", "-m", "shim"]
    drop = ["setpriv", "--reuid", "4321", "--regid", "4321", "--clear-groups"]
    r = subprocess.run(drop + shim + ["--user", "0", "--", "touch", str(marker)],
                       env=base_env(), capture_output=True, timeout=60, cwd=world)
    assert r.returncode == 125, r.stderr
    assert "not root" in r.stderr.decode() and not marker.exists()
    assert r.stderr.decode().count("\n") == 1
    # Asking for who it already is: not an error.
    same = subprocess.run(drop + shim + ["--user", "4321:4321", "--", "touch", str(marker)],
                          env=base_env(), capture_output=True, timeout=60, cwd=world)
    assert same.returncode == 0, same.stderr
    assert marker.exists()


def test_unknown_user_names_the_file_searched(tmp_path):
    r = in_image(tmp_path, ["--user", "ghost", "--", "true"])
    assert r.returncode == 125
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "/etc/passwd" in err and "ghost" in err


PROFILES = {"profiles": {"kubernetes": {"identity": {"user": "4321:4321", "rlimit": ["nofile=512"]}},
                         "sagemaker-training": {"identity": {"umask": "022"}}}}


@pytest.mark.parametrize("runtime,uid,nofile", [("kubernetes", "4321", "512"),
                                                ("sagemaker-training", "0", None)])
def test_a_runtime_profile_sets_the_identity(tmp_path, runtime, uid, nofile):
    import json

    cfg = tmp_path / "shim.json"
    cfg.write_text(json.dumps(PROFILES))
    env = base_env(SHIM_CONFIG=str(cfg), SHIM_RUNTIME=runtime)
    r = run(["--", "sh", "-c", "id -u; ulimit -n"], env=env)
    assert r.returncode == 0, r.stderr
    got_uid, got_nofile = r.stdout.decode().split()
    assert got_uid == uid and (nofile is None or got_nofile == nofile)
    shown = json.loads(run(["detect"], env=env).stdout)
    if uid == "0":
        assert "identity" in shown and shown["identity"]["uid"] == 0  # umask only
    else:
        assert shown["identity"]["uid"] == 4321 and shown["identity"]["rlimits"]["nofile"][0] == 512
    checked = run(["check"], env=env)
    assert checked.returncode == 0, checked.stderr
    line = [x for x in checked.stdout.decode().splitlines() if x.startswith("identity: ")][0]
    assert json.loads(line.split(": ", 1)[1])["uid"] == int(uid)


def test_check_reports_an_unknown_user_without_running(tmp_path):
    r = in_image(tmp_path, ["check"], env=base_env(SHIM_USER="ghost"))
    assert r.returncode == 125
    err = r.stderr.decode()
    assert "ghost" in err and "/etc/passwd" in err


@pytest.fixture
def no_native(tmp_path):
    """The C module hidden (the Nuitka/PyInstaller comparison builds have none)."""
    from support import REPO

    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["_shim_native"] = None\n')
    env = base_env()
    env["PYTHONPATH"] = f"{tmp_path}:{REPO}"
    return env


@pytest.mark.parametrize("mode", ["--exec", "--supervise"])
def test_without_the_c_module_user_limits_umask_still_apply(no_native, mode):
    # Always the source tree (the frozen binary has the C module built in).
    r = subprocess.run([sys.executable, "-m", "shim", mode, "--user", "4321", "--rlimit",
                        "nofile=300:400", "--umask", "077", "--", "sh", "-c",
                        "id -u; id -G; ulimit -n; ulimit -Hn; umask"], env=no_native,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["4321", "4321", "300", "400", "0077"]


@pytest.mark.parametrize("flag", [["--cap-keep", "NET_BIND_SERVICE"], ["--no-new-privileges"]])
def test_without_the_c_module_capabilities_are_a_clear_error(no_native, flag, world):
    # Always the source tree (the frozen binary has the C module built in).
    marker = world / "ran"
    r = subprocess.run([sys.executable, "-m", "shim", "--supervise", "--user", "4321"] + flag +
                       ["--", "touch", str(marker)], env=no_native, capture_output=True,
                       timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 118 and "_shim_native" in err and err.count("\n") == 1, err
    assert not marker.exists()


def test_tee_files_and_secret_dirs_belong_to_the_user(world):
    src = world / "src.json"
    src.write_text('{"a": "1", "b": "2"}')
    tee, secrets = world / "out.log", world / "secrets"
    r = run(["--user", "4321:4321", "--stdout-path", str(tee), "--no-mask-secrets",
             "--secret-dir", f"{secrets}=ref+file://{src}", "--", "sh", "-c",
             f"cat {secrets}/a {secrets}/b"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"12" and tee.read_bytes() == b"12"
    assert (os.stat(tee).st_uid, os.stat(tee).st_gid) == (4321, 4321)
    assert os.stat(secrets / "a").st_uid == 4321  # through the ..data link


def test_own_counts_what_it_changed_in_the_result_record(world):
    import json

    tree = world / "t"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "f").write_text("x")
    record = world / "r.json"
    r = run(["--user", "4321:4321", "--own", str(tree), "--result-file", str(record), "--",
             "true"])
    assert r.returncode == 0, r.stderr
    assert json.loads(record.read_text())["counters"]["owned"] == 3
    r = run(["--user", "4321:4321", "--own", str(tree), "--result-file", str(record), "--",
             "true"])
    assert json.loads(record.read_text())["counters"]["owned"] == 0


def test_the_sagemaker_layout_is_the_users_where_the_delegate_writes(world):
    r = run(["--sagemaker-layout", "--sagemaker-root", str(world), "--user", "4321:4321", "--",
             "sh", "-c", f"touch {world}/opt/ml/model/model.bin {world}/opt/ml/output/data/x "
                         f"{world}/opt/ml/checkpoints/c && cat "
                         f"{world}/opt/ml/input/config/hyperparameters.json"])
    assert r.returncode == 0, r.stderr
    ml = world / "opt" / "ml"
    for sub in ("model", "output", "output/data", "checkpoints",
                "input/config/hyperparameters.json"):
        assert os.stat(ml / sub).st_uid == 4321, sub
    assert os.stat(ml).st_uid == 0  # only what the delegate writes, not the whole tree
