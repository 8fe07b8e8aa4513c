"""The portability matrix: each frozen binary as PID 1 of each base image.

base ∈ {scratch+busybox, musl-only, Debian slim, distroless-like}
× arch ∈ {amd64, arm64 (qemu-user)} × {root, read-only rootfs + no /tmp + uid 65534}.

The binary and a static busybox (the delegate, since distroless has no
shell) are bind-mounted read-only; nothing else of the host is visible.  In the
restricted cell podman's `--read-only-tmpfs=false` keeps /tmp off (like
Kubernetes' readOnlyRootFilesystem), so nothing at all is writable.
"""

import subprocess
import time
import uuid

import pytest

BASES = ("scratch", "musl", "debian-slim", "distroless")
ARCHES = ("amd64", "arm64")
MODES = {
    "root": [],
    "ro-notmp-65534": ["--read-only", "--read-only-tmpfs=false", "--user", "65534:65534"],
}
EXIT_USAGE = 125
# What a freezer could leak into the delegate; none of it may reach it.
LEAKS = ("LD_LIBRARY_PATH", "LD_PRELOAD", "_PYI_", "_MEI", "STATICX_", "NUITKA", "__NUITKA",
         "PYTHONHOME", "PYTHONPATH", "_SHIM_")
TIMEOUT = 120


class Cell:
    """One (base, arch, mode): runs shim in a fresh container per call."""

    def __init__(self, image, arch, mode, shim, busybox):
        self.image, self.arch, self.mode = image, arch, mode
        self.mounts = ["-v", f"{shim}:/shim:ro", "-v", f"{busybox}:/probe/busybox:ro"]

    def args(self, *extra):
        return ["podman", "run", "--arch", self.arch, *MODES[self.mode], *self.mounts, *extra]

    def run(self, *argv, entry=("/shim",)):
        proc = subprocess.run(self.args("--rm", self.image, *entry, *argv), capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        return proc

    def busybox(self, *argv):
        return self.run(*argv, entry=("/probe/busybox",))


@pytest.fixture(params=[(b, a, m) for a in ARCHES for b in BASES for m in MODES],
                ids=lambda p: "-".join(p))
def cell(request, image, binary, busybox):
    base, arch, mode = request.param
    return Cell(image(base, arch), arch, mode, binary(arch), busybox(arch))


def test_smoke(cell):
    """--version, usage, true/false, 127, 42 passthrough, clean env, signal state: one cell, one test."""
    failures = []

    def check(what, proc, code, text=None, stream="stdout"):
        out = getattr(proc, stream)
        if proc.returncode != code or (text is not None and text not in out):
            failures.append(f"{what}: exit {proc.returncode} (want {code}), "
                            f"stdout={proc.stdout[-400:]!r} stderr={proc.stderr[-400:]!r}")

    check("--version", cell.run("--version"), 0)
    check("no arguments", cell.run(), EXIT_USAGE, "usage", stream="stderr")
    check("true", cell.run("--", "/probe/busybox", "true"), 0)
    check("false", cell.run("--", "/probe/busybox", "false"), 1)
    check("missing command", cell.run("--", "/no/such/command"), 127)
    check("missing command in PATH", cell.run("--", "no-such-command"), 127)
    check("exit 42", cell.run("--", "/probe/busybox", "sh", "-c", "exit 42"), 42)
    bare = cell.busybox("env")
    shimmed = cell.run("--", "/probe/busybox", "env")
    check("env", shimmed, 0)
    env = _env(shimmed.stdout)
    leaked = sorted(n for n in env if n.startswith(LEAKS))
    if leaked:
        failures.append(f"delegate env has {leaked}")
    want = {k: v for k, v in _env(bare.stdout).items() if k != "HOSTNAME"}
    got = {k: v for k, v in env.items() if k != "HOSTNAME"}
    # The one variable shim adds (README: "what shim inherited plus SHIM_RUNTIME").
    if got.pop("SHIM_RUNTIME", None) != "podman":
        failures.append(f"delegate env lacks SHIM_RUNTIME=podman: {env}")
    if want != got:
        failures.append(f"delegate env differs from a bare run: bare={want} shim={got}")
    status = ("/probe/busybox", "grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status")
    bare_mask, shim_mask = cell.busybox(*status[1:]), cell.run("--", *status)
    if shim_mask.returncode != 0 or shim_mask.stdout != bare_mask.stdout:
        failures.append(f"delegate signal mask/ignores differ: bare={bare_mask.stdout!r} "
                        f"shim={shim_mask.stdout!r} {shim_mask.stderr!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("how", ["stop", "kill-TERM"])
def test_sigterm_to_pid1(cell, how):
    """SIGTERM to PID 1 reaches the delegate; shim exits 128+15."""
    name = f"shim-matrix-{uuid.uuid4().hex[:12]}"
    subprocess.run(cell.args("-d", "--name", name, cell.image, "/shim", "--", "/probe/busybox",
                             "sleep", "60"), check=True, capture_output=True, timeout=TIMEOUT)
    try:
        _wait_running(name, cell)
        if how == "stop":
            subprocess.run(["podman", "stop", "-t", "20", name], check=True, capture_output=True,
                           timeout=TIMEOUT)
        else:
            subprocess.run(["podman", "kill", "-s", "TERM", name], check=True, capture_output=True)
        code = subprocess.run(["podman", "wait", name], check=True, capture_output=True, text=True,
                              timeout=TIMEOUT).stdout.split()[-1]
        assert int(code) == 143, _logs(name)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)


def _wait_running(name, cell):
    """Until the delegate (busybox sleep) runs as shim's child: the signal must hit a supervised child.

    shim's own argv contains "sleep" too, so look for a process other than PID 1
    that is not shim (under qemu a forked child shows shim's argv until it execs).
    A SIGTERM sent before shim has blocked signals is dropped by the kernel (PID 1
    with SIG_DFL), and under qemu-user it even hangs the emulator; both are
    windows of a few ms natively, of up to a second under qemu.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        top = subprocess.run(["podman", "top", name, "pid", "args"], capture_output=True, text=True)
        for line in top.stdout.splitlines()[1:]:
            pid, _, args = line.strip().partition(" ")
            if pid != "1" and "busybox sleep" in args and "/shim" not in args:
                return
        time.sleep(0.2)
    raise AssertionError(f"delegate never started in {name}: {_logs(name)}")


def _logs(name):
    proc = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def _env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
