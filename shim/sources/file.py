"""ref+file://PATH: the file's bytes (relative paths from the working directory), capped."""

from shim.sources.base import MAX_VALUE as MAX_BODY, SourceError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.sources.base import Context
    from shim.sources.refs import Ref


def fetch(ref: "Ref", ctx: "Context") -> bytes:
    try:
        with open(ref.path, "rb") as f:
            data = f.read(MAX_BODY + 1)
    except OSError as err:
        raise SourceError(f"read {ref.path}: {(err.strerror or str(err)).lower()}",
                          missing=isinstance(err, FileNotFoundError)) from None
    if len(data) > MAX_BODY:
        raise SourceError(f"{ref.path} is over the {MAX_BODY >> 20} MiB cap")
    return data
