"""The local base images are what scripts/images promises (other tiers rely on it)."""

import subprocess
from pathlib import Path

import pytest

from shim.util import platforms

REPO = Path(__file__).resolve().parents[2]

ARCHES = ("amd64", "arm64")
UNAME = {arch: platforms.machine_of(arch) for arch in platforms.ARCHES}
LOADER = {arch: platforms.loader(arch) for arch in platforms.ARCHES}


def podman(*args, timeout=120):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def run_in(ref, arch, *argv, entrypoint=None):
    extra = ["--entrypoint", entrypoint] if entrypoint else []
    return podman("run", "--rm", "--arch", arch, *extra, ref, *argv)


@pytest.mark.parametrize("arch", ARCHES)
def test_scratch_is_busybox_only_without_tmp(image, arch):
    ref = image("scratch", arch)
    proc = run_in(ref, arch, "sh", "-c",
                  'uname -m; test -e /tmp && echo has-tmp; ls /lib /usr/lib 2>/dev/null | wc -l')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [UNAME[arch], "0"]


@pytest.mark.parametrize("arch", ARCHES)
def test_image_records_its_architecture(image, arch):
    for name in ("scratch", "musl", "distroless"):
        out = podman("image", "inspect", "--format", "{{.Architecture}}", image(name, arch))
        assert out.stdout.strip() == arch, (name, out.stderr)


@pytest.mark.parametrize("arch", ARCHES)
def test_musl_runs_a_musl_program_and_has_no_glibc(image, arch):
    ref = image("musl", arch)
    proc = run_in(ref, arch, "probe", "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("musl-probe ok pid=1 hello")
    found = run_in(ref, arch, "find", "/", "-xdev", "(", "-name", "libc.so.6", "-o",
                   "-name", "ld-linux*", ")")
    assert found.returncode == 0 and found.stdout == "", found.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_distroless_has_glibc_and_certificates_but_no_shell(image, arch):
    ref = image("distroless", arch)
    glibc = run_in(ref, arch, "--version", entrypoint=LOADER[arch])
    assert glibc.returncode == 0 and "GLIBC" in glibc.stdout, glibc.stderr
    shell = run_in(ref, arch, "/bin/sh", "-c", "true")
    assert shell.returncode == 127, "distroless must not have a shell"
    mounted = podman("image", "mount", ref)
    assert mounted.returncode == 0, mounted.stderr
    try:
        root = Path(mounted.stdout.strip())
        bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
        assert bundle.count("BEGIN CERTIFICATE") > 100
        assert not any((root / p).exists() for p in ("bin/sh", "bin/bash", "bin/busybox"))
    finally:
        podman("image", "unmount", ref)


def test_debian_servers_has_python_redis_and_nginx(image):
    ref = image("debian-servers")
    proc = run_in(ref, "amd64", "sh", "-c",
                  "cat /etc/debian_version; python3 -c 'print(1)'; redis-server --version; nginx -v")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("12.")


def test_images_script_is_a_no_op_when_cached(image):
    image("scratch")
    proc = subprocess.run([str(REPO / "scripts/images"), "scratch", "musl"], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "building" not in proc.stderr and "imported" not in proc.stderr
