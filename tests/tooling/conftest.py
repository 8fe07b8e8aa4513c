"""Tooling tier: shimtools (k8s inject/webhook/lint, dockerfile wrap, image lookup), fast and local.

Real processes for the CLI and the HTTPS webhook; images are OCI layouts written
by tooling_support.write_layout.  Registry, podman and kube-play tests live in
tests/tools/test_shimtools_*.py.
"""
