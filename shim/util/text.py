"""Values and OS errors as message text: the one formatting every layer uses.

At the bottom of the layering (no shim imports at module level) so that net/,
sources/, platform/, proc/, streams/ and telemetry/ can phrase their messages
without reaching up into shim.config.
"""


def show(value: object) -> str:
    """A value for a message: JSON-ish (true, null), never a Python repr, at most 60 chars."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                       else f"\\u{ord(c):04x}" for c in text)
    elif isinstance(value, (list, dict)):
        from shim.util import jsonio

        try:
            text = jsonio.dumps(value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            text = jsontype(value)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def jsontype(value: object) -> str:
    """The JSON type of a value, as a message names it ("an object", "null")."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def oserror(err: BaseException) -> str:
    """An OSError's cause as a message part ("no such file or directory")."""
    return (err.strerror or str(err)).lower() if isinstance(err, OSError) else str(err)


def iso(ts: float) -> str:
    """A Unix time as UTC ISO 8601 with milliseconds (records, reports)."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
