"""Tooling tier: shimtools (k8s inject/webhook/lint, dockerfile wrap, image lookup), fast and local.

Real processes for the CLI and the HTTPS webhook; images are OCI layouts written
by tooling_support.write_layout.  Registry, podman and kube-play tests live in
tests/tools/test_shimtools_*.py.

No test may reach a public registry: images come from --image-source or a loopback
registry.  As a guard, every HTTP(S) request that is not for loopback goes to a
proxy address on loopback where nothing listens, so a lookup that would have left
the machine fails at once (test_boundary.py checks the guard holds).
"""

import os

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens on it here
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ[_name] = DEAD_PROXY
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1,[::1]"
