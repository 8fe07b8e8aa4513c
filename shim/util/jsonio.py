"""JSON in and out: orjson when installed, the stdlib otherwise.

Both paths produce the same bytes for the records shim writes (sorted keys,
compact separators), so outputs do not depend on which one is present.
"""

from types import ModuleType

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

_orjson: ModuleType | None
try:  # optional fast path
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the frozen build
    _orjson = None


def loads(data: "str | bytes") -> "Any":
    """Parse JSON text or bytes; raises ValueError on malformed input."""
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError as err:
            raise ValueError(str(err)) from None
    import json

    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"not UTF-8: {err}") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise ValueError(str(err)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def dumps(obj: object, indent: bool = False) -> bytes:
    """Serialise to UTF-8 bytes, keys sorted, compact (or 2-space indented)."""
    if _orjson is not None:
        option = _orjson.OPT_SORT_KEYS | (_orjson.OPT_INDENT_2 if indent else 0)
        return _orjson.dumps(obj, option=option)
    import json

    if indent:
        return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False).encode("utf-8")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
