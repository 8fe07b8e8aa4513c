"""A template rendered in a real container from OpenBao over TLS (issue 19): read-only root,
uid 65534, the output on a tmpfs; the frozen binary (when dist/ has one built from these
sources) in the FROM-scratch and distroless-like images, the source tree in debian-servers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "secrets"))

from fixtures import bao, ca, workdir  # noqa: E402,F401
from test_secrets import BUSYBOX, boxed  # noqa: E402,F401  (boxed: a fixture)

TEMPLATE = "db:\n  password: ref+vault://secret/app#/password+\n  host: ${DB_HOST:-db}\nprice: $$5\n"


def test_template_from_openbao_over_tls(boxed, bao, ca, tmp_path):  # noqa: F811
    src = tmp_path / "app.tmpl"
    src.write_text(TEMPLATE)
    src.chmod(0o644)
    podman_args = ["--network", "host", "--add-host", "vault.shim.test:127.0.0.1",
                   "-v", f"{ca.ca_file}:/ca.pem:ro", "-v", f"{BUSYBOX}:/busybox:ro",
                   "-v", f"{src}:/tmpl/app.tmpl:ro",
                   "--read-only", "--read-only-tmpfs=false", "--user", "65534:65534",
                   "--tmpfs", "/run/app:mode=0777",
                   "-e", f"VAULT_ADDR=https://vault.shim.test:{bao.tls_port}",
                   "-e", "VAULT_CACERT=/ca.pem", "-e", f"SHIM_VAULT_TOKEN={bao.reader_token}"]
    proc = boxed(["--exec", "--template", "/tmpl/app.tmpl=/run/app/app.yaml"],
                 ["/busybox", "sh", "-c", "/busybox cat /run/app/app.yaml; "
                  "/busybox stat -c MODE=%a /run/app/app.yaml"], podman_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ("db:\n  password: v2-pass-Zq81\n  host: db\nprice: $5\nMODE=400\n")
    assert "v2-pass-Zq81" not in proc.stderr
