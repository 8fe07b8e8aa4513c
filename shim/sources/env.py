"""ref+env://NAME: a variable of the environment shim started with."""

from shim.sources.base import SourceError


def fetch(ref, ctx):
    value = ctx.env.get(ref.path)
    if value is None:
        raise SourceError(f"variable {ref.path} is not set", missing=True)
    return value
