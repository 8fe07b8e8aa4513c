"""Platform-team tooling around shim: Kubernetes injection, admission webhook, lint,
Dockerfile wrapping and image ENTRYPOINT lookup.

Ships in the pip package (`pip install 'shim[tools]'`) and in the tools image's
`-tooling` variant.  Never imported by the frozen runtime (`shim/`): the runtime
CLI dispatches `shim k8s …` / `shim dockerfile …` here lazily, and a test scans
shim/ to keep it that way.
"""
