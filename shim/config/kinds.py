"""One converter per option kind: raw value from any layer -> typed value.

A raw value comes from a flag or variable (always a string, or a list of strings
for repeatable kinds) or from the config file (any JSON value).  `where` names the
object for errors: '--grace', 'SHIM_GRACE' or '$.supervise.grace'.
"""

from shim.config.option import (
    BOOL,
    COMMAND_MAP,
    DURATION,
    ENUM,
    EXIT_MAP,
    INT,
    JSON,
    LIST,
    MAP,
    PATH,
    SIGNAL_MAP,
    SIZE,
    STR,
    TEMPLATE_LIST,
)
from shim.errors import ShimError, usage_error
from shim.util.text import jsontype, oserror, show  # noqa: F401  (re-exported)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from shim.config.option import Option

# The one boolean parser (flags, variables, files, install's variables).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
BOOL_HELP = "use true/false, yes/no, on/off or 1/0"


def parse_bool(text: object) -> bool:
    """'yes' -> True, 'off' -> False; raises ValueError for anything else (also '')."""
    if isinstance(text, bool):
        return text
    if isinstance(text, str):
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"not a boolean: {show(text)}")


# -- durations -----------------------------------------------------------------
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_HELP = "write a duration as 500ms, 10s, 2m, 1h, 1m30s, or plain seconds"
_DIGITS = frozenset("0123456789")


def parse_duration(text: object) -> float:
    """'500ms' -> 0.5, '1m30s' -> 90.0, '2' -> 2.0; raises ValueError.  Linear, ASCII only."""
    if isinstance(text, bool):
        raise ValueError("not a duration")
    if isinstance(text, (int, float)):
        if not 0 <= text < float("inf"):  # also rejects NaN
            raise ValueError("not a finite non-negative number")
        return float(text)
    if not isinstance(text, str):
        raise ValueError("not a duration")
    s = text.strip()
    if not s or not s.isascii():
        raise ValueError("not a duration")
    total, i, n, units_seen = 0.0, 0, len(s), 0
    while i < n:
        j = i
        while j < n and (s[j] in _DIGITS or s[j] == "."):
            j += 1
        k = j
        while k < n and s[k].isalpha():
            k += 1
        number, unit = s[i:j], s[j:k]
        if not number or number.count(".") > 1 or number == ".":
            raise ValueError(f"cannot read {show(text)}")
        if not unit:
            if k != n or units_seen:  # plain seconds only as the whole value
                raise ValueError(f"cannot read {show(text)}")
            unit = "s"
        elif unit not in _UNITS:
            raise ValueError(f"cannot read {show(text)}")
        units_seen += 1
        total += float(number) * _UNITS[unit]
        if total == float("inf"):
            raise ValueError("too large")
        i = k
    return total


# -- small value parsers shared by the map kinds -----------------------------------
def parse_exit_code(value: object, where: str) -> int:
    """0..255 from an int or an ASCII decimal string (no sign, no '_', no float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str) and value.strip() and set(value.strip()) <= _DIGITS:
        code = int(value.strip())
    else:
        raise usage_error(where, f"invalid exit code {show(value)}", "use a whole number 0 to 255")
    if not 0 <= code <= 255:
        raise usage_error(where, f"exit code {code} out of range", "use 0 to 255")
    return code


# Signals the supervisor consumes itself and never forwards: rewriting one would
# be accepted and never act, so it is refused like an uncatchable one.
NOT_FORWARDED = ("SIGCHLD",)


def parse_signal(value: object, where: str, forwarded: bool = False) -> int:
    """A catchable signal number from a name (TERM, SIGTERM, RTMIN+1, RTMAX-2) or an ASCII
    number.  `forwarded`: it must also be one the supervisor forwards (a rewrite's FROM)."""
    import _signal as signal

    text = str(value).strip().upper() if isinstance(value, (str, int)) and \
        not isinstance(value, bool) else ""
    num = None
    if text and set(text) <= _DIGITS:
        num = int(text)
    elif text:
        name = text if text.startswith("SIG") else "SIG" + text
        num = _signal_by_name(name, signal)
    valid = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    if num is None or num not in valid:
        raise usage_error(where, f"unknown or uncatchable signal {show(value)}",
                          "use a name like TERM, QUIT, USR1, RTMIN+1 or a number")
    if forwarded and num in {getattr(signal, n) for n in NOT_FORWARDED}:
        raise usage_error(where, f"signal {show(value)} is never forwarded (shim reaps on it)",
                          "rewrite a signal shim forwards, such as TERM, INT, QUIT, HUP, USR1")
    return num


def _signal_by_name(name, signal):
    # RTMIN+n counts up, RTMAX-n down (the spellings of kill -l and the schema).
    for base, sep, step in (("SIGRTMIN", "+", 1), ("SIGRTMAX", "-", -1)):
        if name == base or name.startswith(base + sep):
            offset = name[len(base) + 1:] if name != base else "0"
            if not offset or not set(offset) <= _DIGITS or len(offset) > 3:
                return None
            num = getattr(signal, base) + step * int(offset)
            return num if signal.SIGRTMIN <= num <= signal.SIGRTMAX else None
    if name.startswith("SIG_") or not name.replace("SIG", "", 1).isalnum():
        return None
    num = getattr(signal, name, None)
    return int(num) if isinstance(num, int) else None


# -- converters ------------------------------------------------------------------------
def _str(opt, raw, where):
    if not isinstance(raw, str):
        raise usage_error(where, f"expected a string, got {jsontype(raw)}", "quote the value")
    if "\x00" in raw:
        raise usage_error(where, "contains a NUL byte", "remove it")
    return raw


def _path(opt, raw, where):
    value = _str(opt, raw, where)
    if value == "":
        raise usage_error(where, "empty path", "give a path or drop the option")
    return value


def _bool(opt, raw, where):
    try:
        return parse_bool(raw)
    except ValueError:
        raise usage_error(where, f"expected true or false, got {show(raw)}", BOOL_HELP) from None


def _duration(opt, raw, where):
    if raw is None or raw == "":
        # Empty or null is unset, so the option's default (None where it has none: no
        # timeout).  Never None for an option the run uses as a number (--grace=, a JSON null
        # for secrets.deadline once crashed the run with an internal error).
        return opt.default
    try:
        value = parse_duration(raw)
    except (ValueError, TypeError, OverflowError):
        raise usage_error(where, f"invalid duration {show(raw)}", DURATION_HELP) from None
    # One meaning for zero across every timeout: "no timeout" (--timeout 0, --wait-timeout 0).
    return None if value == 0 and opt.zero_is_none else value


def _enum(opt, raw, where):
    if not isinstance(raw, str) or raw not in opt.choices:
        raise usage_error(where, f"invalid value {show(raw)}", "use one of " + ", ".join(opt.choices))
    return raw


def _list(opt, raw, where):
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise usage_error(where, "expected a list of non-empty strings", 'write ["a", "b"]')
    if any("\x00" in x for x in raw):
        raise usage_error(where, "an item contains a NUL byte", "remove it")
    return list(raw)


# Options whose keys are targets: a key given twice is refused, as duplicate secret items
# are (shim.run.secrets), instead of the last one winning silently.
UNIQUE_KEYS = ("secret", "secret_env_prefix", "secret_file", "secret_dir")


def _pairs(opt, raw, where):
    """KEY<sep>VALUE strings (flags, variables) or an object (file) -> dict of raw pairs."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        pairs: dict = {}
        for item in raw:
            if not isinstance(item, str) or opt.sep not in item:
                raise usage_error(where, f"expected {opt.metavar}, got {show(item)}",
                                  f"write it as {opt.metavar}")
            k, v = item.split(opt.sep, 1)
            if k in pairs and opt.name in UNIQUE_KEYS:  # two references for one target
                raise usage_error(where, f"{show(k)} is given twice ({show(pairs[k])} and "
                                  f"{show(v)})", "give each target one reference")
            pairs[k] = v
        return pairs
    if not isinstance(raw, dict):
        raise usage_error(where, f"expected an object, got {jsontype(raw)}", 'write {"KEY": "VALUE"}')
    return raw


def _env_map(opt, raw, where):
    out = {}
    for k, v in _pairs(opt, raw, where).items():
        if not isinstance(k, str) or not k or "=" in k or "\x00" in k:
            raise usage_error(where, f"invalid variable name {show(k)}",
                              "names are non-empty and cannot contain '=' or NUL")
        if not isinstance(v, str):
            raise usage_error(f"{where} {k}", f"expected a string, got {jsontype(v)}",
                              'quote the value: "1"')
        if "\x00" in v:
            raise usage_error(f"{where} {k}", "value contains a NUL byte", "remove it")
        out[k] = v
    return out


def _signal_map(opt, raw, where):
    out = {}
    for k, v in _pairs(opt, raw, where).items():
        # Key first: in `d[f(k)] = f(v)` Python evaluates f(v) first, and the message
        # must name the first bad side as written (FROM before TO).
        sig = parse_signal(k, where, forwarded=True)
        # TO 0 ignores FROM: neither forwarded nor acted on (dumb-init's -r SIG:0).
        out[sig] = 0 if str(v).strip() == "0" and not isinstance(v, bool) else parse_signal(v, where)
    return out


def _exit_map(opt, raw, where):
    out = {}
    for k, v in _pairs(opt, raw, where).items():
        code = parse_exit_code(k, where)  # FROM first (see _signal_map)
        out[code] = parse_exit_code(v, where)
    return out


def _json(opt, raw, where):
    if isinstance(raw, str):
        text = raw
        if text.startswith("@"):
            path = text[1:]
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise ShimError("read", f"{where} file {path}", oserror(err),
                                "check the path and its permissions") from None
        from shim.util import jsonio

        try:
            raw = jsonio.loads(text)
        except ValueError as err:
            raise usage_error(where, f"malformed JSON ({err})", "check the quoting") from None
    if not isinstance(raw, (dict, list)):
        raise usage_error(where, f"expected a JSON object or array, got {jsontype(raw)}",
                          'write {"Entrypoint": [...], "Cmd": [...]}')
    return raw


def _command_map(opt, raw, where):
    """{"train": ["python", "train.py"], ...}: JSON text or @FILE (flag, env) or an object."""
    value = _json(opt, raw, where)
    if not isinstance(value, dict):
        raise usage_error(where, f"expected an object, got {jsontype(value)}",
                          'write {"train": ["cmd", "arg"], "serve": [...]}')
    for word, argv in value.items():
        if not word or not isinstance(argv, list) or not argv or \
                not all(isinstance(x, str) and x and "\x00" not in x for x in argv):
            raise usage_error(f"{where} {word}", "expected a non-empty array of non-empty strings",
                              'write "train": ["python", "train.py"]')
    return {word: list(argv) for word, argv in value.items()}


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
SIZE_HELP = "write a byte count as 512, 64k, 16M or 1G"


def parse_size(value: object, units: "dict[str, int]" = _SIZE_UNITS) -> int:
    """'64k' -> 65536, '3' -> 3, 7 -> 7; raises ValueError.  ASCII digits only, no sign."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str):
        raise ValueError("not a size")
    text = value.strip().lower()
    if text.endswith(("kb", "mb", "gb", "ib")):
        text = text[:-1] if text.endswith("b") and not text.endswith("ib") else text[:-2]
    unit = text[-1:] if text[-1:] in units and text[-1:] != "" and not text[-1:].isdigit() else ""
    digits = text[:-1] if unit else text
    if not digits or not set(digits) <= _DIGITS:
        raise ValueError(f"cannot read {show(value)}")
    return int(digits) * units[unit]


def _int(opt, raw, where):
    try:
        return parse_size(raw, {"": 1})
    except ValueError:
        raise usage_error(where, f"expected a whole number, got {show(raw)}",
                          "write it as 0, 1, 2...") from None


def _size(opt, raw, where):
    try:
        return parse_size(raw)
    except ValueError:
        raise usage_error(where, f"invalid size {show(raw)}", SIZE_HELP) from None


CONVERTERS = {STR: _str, PATH: _path, BOOL: _bool, DURATION: _duration, ENUM: _enum,
              LIST: _list, MAP: _env_map, SIGNAL_MAP: _signal_map, EXIT_MAP: _exit_map,
              JSON: _json, COMMAND_MAP: _command_map, INT: _int, SIZE: _size}


def _templates(opt, raw, where):
    from shim.config.table.templates import convert as templates

    return templates(opt, raw, where)


CONVERTERS[TEMPLATE_LIST] = _templates


def convert(opt: "Option", raw: object, where: str) -> "Any":
    """The option's typed value from a raw value of any layer; raises a usage ShimError."""
    value = CONVERTERS[opt.kind](opt, raw, where)
    if opt.minimum is not None and value is not None and value < opt.minimum:
        floor = _show_floor(opt)
        raise usage_error(where, f"{show(raw)} is below the floor of {floor}",
                          f"use {floor} or more")
    return value


def _show_floor(opt):
    """The floor as the user writes it: 1s, 10ms, 64k, 1."""
    m = opt.minimum
    if opt.kind == DURATION:
        return f"{m:g}s" if m >= 1 else f"{m * 1000:g}ms"
    if opt.kind == SIZE and m >= 1024 and m % 1024 == 0:
        return f"{m // 1024}k"
    return str(m)


# -- message helpers: shim.util.text (the bottom layer), re-exported for the config layer
