"""ref+env://NAME: a variable of the environment shim started with."""

from shim.sources.base import SourceError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref


def fetch(ref: "Ref", ctx: "Context") -> str:
    value = ctx.env.get(ref.path)
    if value is None:
        raise SourceError(f"variable {ref.path} is not set", missing=True)
    return value
