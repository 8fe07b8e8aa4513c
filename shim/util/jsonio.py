"""JSON in and out: orjson when installed, the stdlib otherwise.

Both paths produce the same bytes for the records shim writes (sorted keys,
compact separators), so outputs do not depend on which one is present.
"""

from types import ModuleType

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

_orjson: ModuleType | None = None
if not getattr(__import__("sys"), "frozen", False):  # the static binary never has it: no search
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
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"not UTF-8: {err}") from None
    return scan(data)


_WHITESPACE = " \t\n\r"  # JSON's insignificant whitespace (RFC 8259, section 2)
_SCANNERS: dict = {}


class _Context:
    """What _json's C scanner reads from a json.JSONDecoder: the same defaults."""

    def __init__(self, number: "Any") -> None:
        self.strict = True
        self.object_hook = self.object_pairs_hook = None
        self.parse_float = float if number is None else number
        self.parse_int = int if number is None else number
        self.parse_constant = float  # NaN, Infinity, -Infinity, as json does


def scan(text: "str | bytes", number: "Any" = None) -> "Any":
    """json.loads(text) (with `number` as parse_float and parse_int when given), without
    importing the json package on the way: its import compiles regular expressions, about
    8 ms of a start that reads a Vault or AWS answer in the static binary (SHIM_PROFILE_START=1).
    A well-formed document goes through the same C scanner json uses; anything else is read
    again by json.loads itself, so errors are json's own.  ValueError when malformed."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return _slow(text, number)  # json detects UTF-16/32 itself
    scanner = _SCANNERS.get(number)
    if scanner is None:
        try:
            import _json
        except ImportError:  # a Python without the C accelerator
            return _slow(text, number)
        # _json reads only these attributes of a decoder (typeshed asks for a JSONDecoder)
        scanner = _SCANNERS[number] = _json.make_scanner(_Context(number))  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scanner(text, start)
    except (StopIteration, SystemError, ValueError):
        return _slow(text, number)  # json's own message (the C scanner needs json for one)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if text[end:].strip(_WHITESPACE):
        return _slow(text, number)  # "Extra data"
    return value


def _slow(text: "str | bytes", number: "Any") -> "Any":
    import json

    try:
        if number is None:
            return json.loads(text)
        return json.loads(text, parse_float=number, parse_int=number)
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
