"""Kubernetes tooling: find pod specs in manifests, inject shim, serve it as a webhook, lint."""
