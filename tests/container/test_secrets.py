"""Secrets in real containers: read-only root, uid 65534, OpenBao over TLS by host name and
moto with signature checking, both on the host's loopback (--network host); the delegate
sees the values.  The source tree runs in debian-servers; the frozen binary (when dist/ has
one built from these sources) also in the FROM-scratch and distroless-like images."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "secrets"))

import uuid  # noqa: E402

from conftest import Container, shim_flavors, shim_in_container  # noqa: E402
from fixtures import bao, ca, moto, workdir  # noqa: E402,F401

from support import require_tool  # noqa: E402

BUSYBOX = "/bin/busybox"  # busybox-static: `env` for an image without a shell


def cases():
    """(flavor, image): the source tree needs the image with a Python; the binary runs in
    FROM-scratch and distroless-like images."""
    return [("src", "debian-servers")] + [("bin", i) for i in ("scratch", "distroless")
                                          if "bin" in shim_flavors()]


@pytest.fixture(params=cases(), ids=lambda c: f"{c[0]}-{c[1]}")
def boxed(request, image, tmp_path):
    """run(shim_args, command, podman_args) -> CompletedProcess of `podman run`."""
    require_tool("podman")
    flavor, base = request.param
    made = []
    mount_args, prefix = shim_in_container(flavor)

    def run(shim_args, command, podman_args=()):
        box = Container(f"shim-test-{uuid.uuid4().hex[:12]}")
        made.append(box)
        return box.podman("run", "--name", box.name, *mount_args, *podman_args, image(base),
                          *prefix, *shim_args, "--", *command, timeout=120, check=False)

    yield run
    for box in made:
        box.close()


def test_values_reach_the_delegate(boxed, bao, ca, moto):
    moto.client("ssm").put_parameter(Name="/box/param", Value="ssm-in-box", Type="SecureString",
                                     Overwrite=True)
    env = {"VAULT_ADDR": f"https://vault.shim.test:{bao.tls_port}", "VAULT_CACERT": "/ca.pem",
           "SHIM_VAULT_TOKEN": bao.reader_token, "AWS_ENDPOINT_URL": moto.url,
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": moto.key_id,
           "AWS_SECRET_ACCESS_KEY": moto.secret, "AWS_EC2_METADATA_DISABLED": "true",
           "APP_KEY": "ref+vault://kv1/app#/password"}
    podman_args = ["--network", "host", "--add-host", "vault.shim.test:127.0.0.1",
                   "-v", f"{ca.ca_file}:/ca.pem:ro", "-v", f"{BUSYBOX}:/busybox:ro",
                   "--read-only", "--read-only-tmpfs=false", "--user", "65534:65534",
                   "--tmpfs", "/run/secrets:mode=0777"]
    for k, v in env.items():
        podman_args += ["-e", f"{k}={v}"]
    # --exec: the fetch phase is under test, and the source tree in a container has no
    # _shim_native for supervising (the binary has).
    proc = boxed(
        ["--exec", "--secret", "DB=ref+vault://secret/app#/password",
         "--secret", "P=ref+awsssm://box/param",
         "--secret-file", "/run/secrets/db=ref+vault://secret/app#/password"],
        ["/busybox", "sh", "-c", "/busybox env; echo FILE=$(/busybox cat /run/secrets/db)"], podman_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert got["DB"] == "v2-pass-Zq81" and got["APP_KEY"] == "v1-pass-Hk27"
    assert got["P"] == "ssm-in-box" and got["FILE"] == "v2-pass-Zq81"
    assert "SHIM_VAULT_TOKEN" not in got
    assert "v2-pass-Zq81" not in proc.stderr


def test_fetch_failure_in_a_container(boxed, bao, ca):
    podman_args = ["--network", "host", "--add-host", "vault.shim.test:127.0.0.1",
                   "-v", f"{ca.ca_file}:/ca.pem:ro", "-v", f"{BUSYBOX}:/busybox:ro",
                   "-e", f"VAULT_ADDR=https://vault.shim.test:{bao.tls_port}",
                   "-e", "VAULT_CACERT=/ca.pem", "-e", "SHIM_VAULT_TOKEN=wrong"]
    proc = boxed(["--exec", "--secret", "DB=ref+vault://secret/app#/password"], ["/busybox", "true"],
                 podman_args)
    assert proc.returncode == 117
    assert "fetch ref+vault://secret/app#/password (vault, for env DB)" in proc.stderr
    assert "HTTP 403" in proc.stderr
