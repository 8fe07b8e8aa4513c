"""Secret and config sources, the `ref+` parser, the concurrent fetch phase and the targets
values are written to.

Nothing here is imported by `shim -- true` with no references configured: the run pipeline
imports `shim.sources.fetch` only when there is something to fetch.
"""
