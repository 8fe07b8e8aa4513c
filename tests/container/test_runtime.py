"""The runtime as PID 1 of a podman container (issue #2).

Real containers, real delegates (sh, redis-server, nginx).  No timing
assertions: readiness is awaited by polling logs, and outcomes are judged by
exit codes, logs and files the delegate writes into /out (the test's tmp_path).
"""

import re

import pytest

from shim.errors import EXIT_NOT_FOUND, EXIT_TIMEOUT

# A delegate that reports readiness, then idles in short sleeps so a trap runs promptly.
IDLE = "echo ready; while :; do sleep 0.1; done"


def test_shim_is_pid1_and_delegate_is_its_child(shim_container):
    box, proc = shim_container([], ["sh", "-c", 'echo "$$ $PPID"; tr "\\0" " " </proc/1/cmdline'])
    assert proc.returncode == 0, proc.stderr
    first, cmdline = proc.stdout.splitlines()[:2]
    pid, ppid = map(int, first.split())
    assert ppid == 1, "the delegate must be a child of PID 1"
    assert pid != 1, "shim must stay PID 1 and supervise, not exec"
    assert "shim" in cmdline, f"PID 1 is not the shim: {cmdline!r}"


def test_exec_mode_makes_the_delegate_pid1(shim_container):
    # --exec: no resident shim; the delegate replaces it as PID 1 (and owns reaping).
    _, proc = shim_container(["--exec"], ["sh", "-c", 'echo "$$"; tr "\\0" " " </proc/1/cmdline'])
    assert proc.returncode == 0, proc.stderr
    pid, cmdline = proc.stdout.splitlines()[:2]
    assert pid == "1"
    assert "shim" not in cmdline


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_code_passes_through_the_container(shim_container, code):
    _, proc = shim_container([], ["sh", "-c", f"exit {code}"])
    assert proc.returncode == code, proc.stderr


def test_command_not_found_exits_127(shim_container):
    _, proc = shim_container([], ["no-such-command-here"])
    assert proc.returncode == EXIT_NOT_FOUND
    assert "shim:" in proc.stderr


def test_podman_stop_reaches_a_trapping_delegate(shim_container, tmp_path):
    script = f'trap "echo term > /out/marker; exit 0" TERM; {IDLE}'
    box, _ = shim_container([], ["sh", "-c", script], detach=True)
    box.wait_for_log("ready")
    box.stop(grace=20)
    assert box.exit_code() == 0, box.logs()
    assert (tmp_path / "marker").read_text().strip() == "term"


def test_podman_stop_kills_an_untrapped_delegate_with_143(shim_container):
    # 143 = 128 + SIGTERM: the delegate died of the forwarded TERM (137 would mean
    # podman gave up and sent KILL because the signal never arrived).
    box, _ = shim_container([], ["sh", "-c", 'echo ready; exec sleep 1000'], detach=True)
    box.wait_for_log("ready")
    box.stop(grace=20)
    assert box.exit_code() == 143, box.logs()


def test_podman_kill_forwards_other_signals(shim_container, tmp_path):
    script = f'trap "echo usr1 > /out/marker; exit 5" USR1; {IDLE}'
    box, _ = shim_container([], ["sh", "-c", script], detach=True)
    box.wait_for_log("ready")
    box.podman("kill", "-s", "USR1", box.name)
    assert box.wait() == 5, box.logs()
    assert (tmp_path / "marker").read_text().strip() == "usr1"


def test_read_only_rootfs_without_tmp_as_nobody(shim_container):
    # Kubernetes' readOnlyRootFilesystem + runAsUser: nothing writable, no /tmp tmpfs.
    _, proc = shim_container(
        [], ["sh", "-c", 'echo "uid=$(id -u) ppid=$PPID"; touch /probe 2>/dev/null || echo ro'],
        podman_args=["--read-only", "--read-only-tmpfs=false", "--user", "65534:65534"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["uid=65534", "ppid=1", "ro"]


def test_signal_group_reaches_the_delegates_children(shim_container, tmp_path):
    # Without --signal-group only sh would get TERM, and sh waits for its
    # foreground child; with it the whole group gets TERM at once.
    script = ('sh -c "trap \'echo child > /out/child; exit 0\' TERM; '
              'echo ready; while :; do sleep 0.1; done"; echo parent-done > /out/parent')
    box, _ = shim_container(["--signal-group"], ["sh", "-c", script], detach=True)
    box.wait_for_log("ready")
    box.stop(grace=20)
    assert box.exit_code() == 143, box.logs()  # the untrapped outer sh died of TERM
    assert (tmp_path / "child").read_text().strip() == "child"


def test_timeout_terminates_the_delegate_with_124(shim_container):
    _, proc = shim_container(["--timeout", "1s", "--grace", "2s"], ["sleep", "1000"])
    assert proc.returncode == EXIT_TIMEOUT, proc.stderr


def test_timeout_escalates_to_kill_after_grace_when_term_is_ignored(shim_container):
    # The delegate ignores TERM; shim must KILL it after --grace and still exit 124.
    _, proc = shim_container(["--timeout", "1s", "--grace", "1s"],
                             ["sh", "-c", f'trap "" TERM; {IDLE}'])
    assert proc.returncode == EXIT_TIMEOUT, proc.stderr
    assert proc.stdout.startswith("ready")


def test_orphans_are_reaped_by_pid1(shim_container, tmp_path):
    # 50 double-forked sleeps are re-parented to PID 1 (the shim); the delegate then
    # kills them while it still runs, so only PID 1 can reap them.  Nothing depends
    # on timing: the orphans live until killed, and the delegate polls (up to 10 s)
    # until no sleep is left, zombie or not.
    script = ('echo $$ > /out/delegate; '
              'for i in $(seq 50); do (sleep 1000 &); done; '
              'ps -eo pid=,ppid=,stat=,comm= > /out/before; '
              'pkill -x sleep; '
              'i=0; while [ $i -lt 100 ] && ps -eo comm= | grep -qx sleep; do '
              'sleep 0.1; i=$((i+1)); done; '
              'ps -eo pid=,ppid=,stat=,comm= > /out/after')
    _, proc = shim_container([], ["sh", "-c", script])
    assert proc.returncode == 0, proc.stderr
    delegate = int((tmp_path / "delegate").read_text())
    before = _ps(tmp_path / "before")
    after = _ps(tmp_path / "after")
    orphans = [p for p in before if p["ppid"] == 1 and p["pid"] != delegate]
    assert len(orphans) == 50, f"expected 50 orphans re-parented to PID 1:\n{before}"
    zombies = [p for p in after if p["stat"].startswith("Z")]
    assert zombies == [], f"zombies left:\n{zombies}"
    assert [p for p in after if p["comm"] == "sleep"] == [], after


def _ps(path):
    rows = []
    for line in path.read_text().splitlines():
        pid, ppid, stat, comm = line.split(None, 3)
        rows.append({"pid": int(pid), "ppid": int(ppid), "stat": stat, "comm": comm.strip()})
    return rows


def test_redis_saves_on_podman_stop(shim_container, tmp_path):
    command = ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--dir", "/out",
               "--save", "3600 1", "--daemonize", "no", "--protected-mode", "yes"]
    box, _ = shim_container([], command, detach=True)
    box.wait_for_log("Ready to accept connections")
    box.podman("exec", box.name, "redis-cli", "set", "shimkey", "shimvalue")
    box.stop(grace=30)
    assert box.exit_code() == 0, box.logs()
    logs = box.logs()
    assert "Saving the final RDB snapshot" in logs, logs
    rdb = tmp_path / "dump.rdb"
    assert rdb.exists(), logs
    assert b"shimkey" in rdb.read_bytes()


NGINX = ["nginx", "-g", "daemon off; error_log stderr notice;"]


def test_nginx_shuts_down_gracefully_with_rewrite_term_to_quit(shim_container):
    box, _ = shim_container(["--rewrite", "TERM:QUIT"], NGINX, detach=True)
    box.wait_for_log("start worker process")
    box.stop(grace=30)
    logs = box.logs()
    assert box.exit_code() == 0, logs
    assert re.search(r"signal 3 \(SIGQUIT\) received", logs), logs
    assert "gracefully shutting down" in logs, logs


def test_nginx_without_rewrite_shuts_down_fast(shim_container):
    box, _ = shim_container([], NGINX, detach=True)
    box.wait_for_log("start worker process")
    box.stop(grace=30)
    logs = box.logs()
    assert box.exit_code() == 0, logs
    assert re.search(r"signal 15 \(SIGTERM\) received", logs), logs
    assert "gracefully shutting down" not in logs, logs
