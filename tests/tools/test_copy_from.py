"""The `COPY --from` recipe: deploy/Containerfile.copy-from on each base kind, built with podman and run.

The tools image is given as a local multi-arch manifest list, so each platform's
build has to pick its own /shim from it, as with a registry.
"""

import pytest

from shim.util import platforms
from tools_support import REPO, podman, run, unique

# kind -> (ENTRYPOINT after `shim --`, text the run must print).  Distroless has no
# program but glibc's loader: run that (a dynamic glibc executable under shim as PID 1),
# not shim itself, so the row tests what a distroless app gets.
APPS = {
    "scratch": (lambda arch: ["/bin/echo", "scratch-ok"], "scratch-ok"),
    "musl": (lambda arch: ["/usr/local/bin/probe", "musl-ok"], "musl-ok"),
    "debian-slim": (lambda arch: ["/bin/sh", "-c", "echo debian-ok"], "debian-ok"),
    "distroless": (lambda arch: [platforms.loader(arch), "--version"], "GLIBC"),
}


def containerfile(command):
    """The recipe with its example command replaced by `command`."""
    text = (REPO / "deploy/Containerfile.copy-from").read_text()
    lines = [line for line in text.splitlines() if not line.startswith(("ENTRYPOINT", "CMD"))]
    assert "COPY --from=shim /shim /usr/local/bin/shim" in lines
    entrypoint = ", ".join(f'"{a}"' for a in ["/usr/local/bin/shim", "--", *command])
    return "\n".join(lines + [f"ENTRYPOINT [{entrypoint}]", ""])


@pytest.mark.parametrize("kind, arch", [(k, "amd64") for k in APPS] + [("distroless", "arm64")])
def test_copy_from_the_tools_image_builds_and_runs_on_each_base(kind, arch, tools, image, dist, tmp_path):
    command, expect = APPS[kind]
    (tmp_path / "Containerfile").write_text(containerfile(command(arch)))
    ref = f"localhost/{unique('shim-copy-from')}:{arch}"
    run(["podman", "build", "--isolation=chroot", "--platform", f"linux/{arch}", "-t", ref,
         "--build-arg", f"SHIM_TOOLS={tools['list']}", "--build-arg", f"BASE={image(kind, arch)}",
         "-f", tmp_path / "Containerfile", tmp_path], timeout=300)
    try:
        proc = podman("run", "--rm", "--read-only", "--user", "65534:65534", ref, timeout=120)
        assert expect in proc.stdout
        # The copied binary is this platform's, byte for byte.
        cid = podman("create", ref).stdout.strip()
        try:
            podman("cp", f"{cid}:/usr/local/bin/shim", tmp_path / "copied")
        finally:
            podman("rm", "-f", cid, check=False)
        assert (tmp_path / "copied").read_bytes() == dist[arch].read_bytes()
    finally:
        podman("rmi", "-f", ref, check=False)
