"""Properties of each built binary that need no container: static, small, self-describing."""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import pytest

from support import REPO

sys.path.insert(0, str(REPO / "build"))
import lock  # noqa: E402

ARCHES = ("amd64", "arm64")
ELF_MACHINE = {"amd64": 62, "arm64": 183}
PT_INTERP = 3
MAX_SIZE = 16 * 1000 * 1000  # issue #9: at most 16 MB per arch with TLS and the CA bundle
EXIT_INTERNAL = 119


def program_headers(data):
    """Types of the ELF64 little-endian program headers."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]


@pytest.mark.parametrize("arch", ARCHES)
def test_static_small_and_for_its_arch(binary, arch):
    data = binary(arch).read_bytes()
    assert struct.unpack_from("<H", data, 18)[0] == ELF_MACHINE[arch]
    assert PT_INTERP not in program_headers(data), "has a dynamic loader (PT_INTERP): not static"
    assert len(data) <= MAX_SIZE, f"{len(data)} bytes > {MAX_SIZE}"


@pytest.mark.parametrize("arch", ARCHES)
def test_version_reports_the_build(binary, arch):
    proc = subprocess.run([str(binary(arch)), "version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["arch"] == arch
    assert info["freezer"] == "static"
    assert info["python"].startswith("3.11.")
    assert info["commit"] and info["build_date"].endswith("Z")
    assert info["native"] is True  # _shim_native is built in
    built = info["build_deps"]
    entries = lock.load(REPO / "build/inputs.lock")
    # A drifted build (the mirror no longer served a locked .deb: build/resolve.py) used today's
    # version instead, and says so; everything else is exactly the lock.
    assert info["build"] == ("drifted" if info["drift"] else "locked")
    used = []
    for e in lock.for_arch(entries, arch):
        drift = info["drift"].get(f"{e.name}:{e.arch}")
        if drift:
            assert (drift["locked"], drift["locked_sha256"]) == (e.version, e.sha256)
            e = lock.Entry(e.kind, e.name, e.arch, drift["used"], drift["used_sha256"], e.file)
        used.append(e)
    # Every input of this arch (and the arch-independent ones) is listed with its hash.
    assert built["lock"] == {e.label: e.sha256 for e in used}
    assert info["ca_bundle"] == lock.find(used, "deb", "ca-certificates").version
    assert info["deps"]["setproctitle"] == lock.find(used, "sdist", "setproctitle").version
    assert built["glibc"] == lock.find(used, "deb", "libc6-dev").version
    assert info["components"]["glibc"] == built["glibc"]


@pytest.mark.parametrize("arch", ARCHES)
def test_every_shim_module_imports_inside_the_binary(binary, arch):
    """`shim __selftest imports` imports every shim module and the declared extras from
    the binary's own archive and builtins (arm64 under qemu-user)."""
    proc = subprocess.run([str(binary(arch)), "__selftest", "imports"], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["failed"] == {}, report["failed"] or proc.stderr
    assert report["imported"] > 40
    features = report["features"]
    assert features["idna"] == "xn--bcher-kva.example"  # getaddrinfo() on str hosts needs it
    assert features["json_c_encoder"] is True
    assert features["openssl"].startswith("OpenSSL 3.")


def test_setproctitle_is_built_in(binary):
    """The supervisor's title shows in ps: setproctitle rewrites argv (prctl alone only sets comm)."""
    import time

    proc = subprocess.Popen([str(binary("amd64")), "--supervise", "--", "/bin/sleep", "30"])
    try:
        deadline = time.monotonic() + 20
        cmdline = b""
        while time.monotonic() < deadline and not cmdline.startswith(b"shim: supervising"):
            time.sleep(0.05)
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                cmdline = f.read()
    finally:
        proc.terminate()
        proc.wait()
    assert cmdline.startswith(b"shim: supervising sleep"), cmdline


def test_execute_only_install_says_how_to_fix(binary):
    """Mode 0111 cannot work (the binary reads its own archive): one line that says so."""
    if os.getuid() != 0:
        pytest.skip("needs root to run as another user")  # CI runs as root
    # pytest's tmp_path is 0700 under /tmp/pytest-of-root: uid 65534 could not reach it.
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        target = os.path.join(tmp, "shim")
        shutil.copyfile(binary("amd64"), target)
        os.chmod(target, 0o111)
        proc = subprocess.run([target, "--", "/bin/true"], capture_output=True, text=True,
                              user=65534, group=65534, timeout=60)
    assert proc.returncode == EXIT_INTERNAL
    assert proc.stderr.startswith("shim: start ") and "chmod 0555" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_keeps_running_after_its_file_is_replaced(binary, tmp_path):
    """Lazy imports read /proc/self/exe, the running file, not whatever now sits at the path."""
    target = tmp_path / "shim"
    shutil.copyfile(binary("amd64"), target)
    os.chmod(target, 0o755)
    marker = tmp_path / "go"
    proc = subprocess.Popen([str(target), "--supervise", "--", "/bin/sh", "-c",
                             f"while [ ! -e {marker} ]; do sleep 0.05; done; exit 3"],
                            stderr=subprocess.PIPE, text=True)
    try:
        replacement = tmp_path / "shim.new"
        replacement.write_bytes(b"\x7fELF not shim any more")
        os.replace(replacement, target)
        marker.touch()
        assert proc.wait(timeout=60) == 3, proc.stderr.read()
    finally:
        proc.kill()


def test_sigterm_during_start_up_is_not_lost(binary):
    """As PID 1, a TERM sent while CPython is still starting must still reach the delegate.

    The launcher blocks signals first thing in main(); without that the kernel drops a
    signal to PID 1 that has no handler yet, and the container ignores `podman stop`.
    The test signals 1 ms after the child of unshare has become the shim (its exe is
    the binary): inside CPython's ~9 ms start-up, past the microseconds between exec
    and main() that no init can cover (tini neither).
    """
    import time

    shim = str(binary("amd64").resolve())
    for _ in range(5):
        proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", shim,
                                 "--", "sleep", "30"])
        shim_pid = None
        for _ in range(20000):
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    kids = f.read().split()
                if kids and os.readlink(f"/proc/{kids[0]}/exe") == shim:
                    shim_pid = int(kids[0])
                    break
            except OSError:
                pass
        assert shim_pid is not None
        # The launcher blocks signals first thing in main(): wait (at most 3 ms, well
        # inside CPython's start-up) until the mask shows it, so a loaded machine cannot
        # land the signal in the exec -> main() window no init covers.  Without the early
        # block the mask stays empty until Python runs, the wait runs out, and the TERM
        # is lost: the test fails as it should.
        end = time.monotonic() + 0.003
        while time.monotonic() < end and not _sig_blocked(shim_pid):
            pass
        os.kill(shim_pid, 15)
        try:
            assert proc.wait(timeout=20) == 143
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args", [["--", "/bin/true"], ["--supervise", "--", "/bin/true"]], ids=["exec", "supervise"])
def test_start_up_never_opens_the_archive(binary, args):
    """The run path's modules are frozen into the launcher (docs/freeze.md): the only open of
    the binary's own file is the launcher's readability check, never zipimport's."""
    from support import require_tool

    require_tool("strace")
    proc = subprocess.run(["strace", "-f", "-e", "trace=openat,open", str(binary("amd64")), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    own = [line for line in proc.stderr.splitlines() if "/proc/self/exe" in line and "openat" in line]
    assert len(own) == 1, own


def _sig_blocked(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return int(line.split()[1], 16) != 0
    except OSError:
        pass
    return False
