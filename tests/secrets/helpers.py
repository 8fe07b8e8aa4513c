"""Run the fetch phase in-process the way the pipeline does."""

from shim.sources.fetch import Item, fetch_all
from shim.sources.refs import parse


def fetch(refs, env, **kw):
    """{ref text: value} for refs, fetched together; ShimError on failure."""
    items = [Item(parse(r), "test") for r in refs]
    results = fetch_all(items, env=env, **kw)
    return {r: res.value for r, res in zip(refs, results, strict=True)}
