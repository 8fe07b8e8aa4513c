"""The delegate's environment: what shim inherited, plus what the user configured.

Order of operations (each sees the result of the one before):
  inherited (minus the freezer's own variables) -> env files -> set -> default
  -> prepend -> append -> unset.
Values from the configuration may use `${VAR}` / `${VAR:-fallback}` expansion
against the environment built so far; `$$` is a literal `$`.  Nothing is ever
run: there is no command substitution.
"""

import os
import sys

from shim.errors import REASON_INTERRUPTED, ShimError, usage_error
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Mapping

    from shim.config.options import Config

# Variables a freezer's bootloader sets for itself (PyInstaller, staticx, Nuitka).
RUNTIME_PREFIXES = ("_PYI_", "_MEI", "STATICX_", "NUITKA_", "__NUITKA", "PYINSTALLER_RESET_")


def inherited(environ: "Mapping[str, str]", frozen: "bool | None" = None) -> "dict[str, str]":
    """The environment shim was started with, without its own runtime's variables.

    PyInstaller moves the user's LD_LIBRARY_PATH to LD_LIBRARY_PATH_ORIG before
    setting its own; restore the user's value (or its absence).
    """
    env = dict(environ)
    if frozen is None:
        frozen = is_frozen()
    if not frozen:
        return env
    for name in list(env):
        if name.startswith(RUNTIME_PREFIXES):
            del env[name]
    if "LD_LIBRARY_PATH_ORIG" in env:
        env["LD_LIBRARY_PATH"] = env.pop("LD_LIBRARY_PATH_ORIG")
    elif hasattr(sys, "_MEIPASS"):
        env.pop("LD_LIBRARY_PATH", None)
    return env


def is_frozen() -> bool:
    """True inside a PyInstaller, Nuitka or shim static build."""
    return bool(getattr(sys, "frozen", False) or "__compiled__" in globals())


def build(base: "Mapping[str, str]", config: "Config", read: "Callable[[str], bytes] | None" = None,
          stop: "Callable[[], object] | None" = None) -> "dict[str, str]":
    """Apply the configured operations to `base` and return the new environment.

    Errors name where the value came from (`--env A`, `SHIM_ENV A`, `$.env.set A`,
    `env file F line N A`).  `stop()` -> a stop signal that arrived, or None (default:
    the blocked SIGTERM/INT/QUIT/HUP pending on the process): reading env files is the
    one long synchronous phase, so it asks now and then and ends with 128+n.
    """
    env = dict(base)
    stop = stop or pending_stop_signal
    for path in config.env.files:
        _check_stop(stop)
        for name, value in parse_dotenv(_read_env_file(path, read), path, env, stop):
            env[name] = value

    def where(option: str, name: str) -> str:
        return f"{config.source_of(option)} {name}"

    for name, value in config.env.set.items():
        env[name] = expand(value, env, where("env", name))
    for name, value in config.env.default.items():
        if name not in env:
            env[name] = expand(value, env, where("default_env", name))
    for name, value in config.env.prepend.items():
        env[name] = _join(expand(value, env, where("prepend_env", name)), _current(env, name))
    for name, value in config.env.append.items():
        env[name] = _join(_current(env, name), expand(value, env, where("append_env", name)))
    for name in config.env.unset:
        env.pop(name, None)
    return env


STOP_SIGNAL_NAMES = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP")
STOP_EVERY = 1024  # lines of an env file between two looks for a stop signal


def pending_stop_signal() -> "int | None":
    """A stop signal pending (blocked, not yet collected) on this process, or None."""
    import _signal

    pending = _signal.sigpending()
    for name in STOP_SIGNAL_NAMES:
        if getattr(_signal, name) in pending:
            return int(getattr(_signal, name))
    return None


def _check_stop(stop):
    sig = stop() if stop is not None else None
    if sig is not None:
        import _signal

        names = {int(getattr(_signal, n)): n for n in STOP_SIGNAL_NAMES}
        raise ShimError("run", "delegate", f"not started: signal {names.get(sig, sig)} arrived "
                        "first (while reading env files)", "", reason=REASON_INTERRUPTED,
                        code=128 + sig)


def _current(env, name):
    """The list a prepend/append extends.  An unset PATH is the search path shim would
    use anyway, so `--prepend-env PATH=/opt/bin` adds to it instead of replacing it."""
    if name == "PATH" and name not in env:
        from shim.run.delegate import DEFAULT_PATH

        return DEFAULT_PATH
    return env.get(name)


def _join(first, second):
    return os.pathsep.join(part for part in (first, second) if part)


# No process can be given an environment near this size (execve's limit is a quarter
# of the stack limit, 2 MiB by default): reading and parsing more only delays the error.
ENV_FILE_LIMIT = 16 << 20


def _read_env_file(path, read=None):
    try:
        if read is not None:
            return read(path)
        with open(path, "rb") as f:
            data = f.read(ENV_FILE_LIMIT + 1)
        if len(data) > ENV_FILE_LIMIT:
            raise usage_error(f"env file {path}", f"larger than {ENV_FILE_LIMIT >> 20} MiB",
                              "no program can be started with an environment that large; "
                              "split it or pass the data as a file")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise usage_error(f"env file {path}", "not UTF-8 text", "save it as UTF-8") from None
    except OSError as err:
        raise ShimError("read env file", path, (err.strerror or str(err)).lower(),
                        "check the path given by --env-file and its permissions") from None


# -- ${VAR} expansion -----------------------------------------------------------
# Every parser here is linear in its input: each search resumes where the last one
# stopped, so a megabyte of unterminated quote or ${ fails in milliseconds.
NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
NAME_CHARS = NAME_START | frozenset("0123456789")
MAX_NESTING = 16  # ${A:-${B:-...}} levels


def expand(value: str, env: "Mapping[str, str]", where: str = "value") -> str:
    """Expand ${NAME}, ${NAME:-fallback}, ${NAME-fallback} and $$; unknown NAME is ''.

    Fallbacks may nest (`${X:-${HOME}}`).  A lone `$`, `$NAME` and `$(...)` stay
    literal: there is never command substitution.
    """
    if "$" not in value:
        return value
    return _expand_from(value, 0, env, where, 0)[0]


def _expand_from(value, i, env, where, depth):
    """(text, index after) of value[i:] up to the end (depth 0) or this level's '}'."""
    out, n = [], len(value)
    dollar = value.find("$", i)
    close = value.find("}", i) if depth else -1
    while True:
        if depth and close >= 0 and (dollar < 0 or close < dollar):
            out.append(value[i:close])
            return "".join(out), close + 1
        if dollar < 0:
            if depth:
                raise _unterminated(value, where)
            out.append(value[i:])
            return "".join(out), n
        out.append(value[i:dollar])
        nxt = value[dollar + 1:dollar + 2]
        if nxt == "$":
            out.append("$")
            i = dollar + 2
        elif nxt == "{":
            text, i = _reference(value, dollar, env, where, depth)
            out.append(text)
        else:
            out.append("$")
            i = dollar + 1
        if dollar < i:
            dollar = value.find("$", i)
        if depth and 0 <= close < i:  # none left (-1) stays none: no rescans to the end
            close = value.find("}", i)


def _reference(value, start, env, where, depth):
    """Expand the ${...} at `start`; (text, index after its '}')."""
    n, j = len(value), start + 2
    if j < n and value[j] in NAME_START:
        j += 1
        while j < n and value[j] in NAME_CHARS:
            j += 1
    name = value[start + 2:j]
    if j >= n:
        raise _unterminated(value, where)
    if name and value[j] == "}":
        return env.get(name, ""), j + 1
    for op in (":-", "-"):
        if name and value.startswith(op, j):
            if depth + 1 > MAX_NESTING:
                raise usage_error(where, f"${{...}} nested more than {MAX_NESTING} deep",
                                  "simplify the fallbacks")
            fallback, end = _expand_from(value, j + len(op), env, where, depth + 1)
            current = env.get(name)
            if current is None or (op == ":-" and current == ""):
                return fallback, end
            return current, end
    close = value.find("}", j)
    shown = value[start:close + 1] if 0 <= close < start + 40 else value[start:start + 20] + "..."
    raise usage_error(where, f"invalid variable reference {show(shown)}",
                      "use ${NAME}, ${NAME:-fallback} or ${NAME-fallback}; NAME has letters, "
                      "digits and _")


def _unterminated(value, where):
    return usage_error(where, "unterminated ${", "close it with } or write $$ for a literal $")


# -- dotenv -------------------------------------------------------------------------
def parse_dotenv(text: str, source: str, env: "Mapping[str, str] | None" = None,
                 stop: "Callable[[], object] | None" = None) -> "list[tuple[str, str]]":
    """[(name, value)] from dotenv text, in one linear pass.

    Syntax: `NAME=VALUE`, optional `export ` (or export and a tab), `#` comments,
    blank lines, an optional UTF-8 byte-order mark; 'single quotes' are literal;
    "double quotes" allow \\n \\t \\" \\\\ escapes, ${VAR} expansion and span lines;
    unquoted values are trimmed, lose a ` #comment` and are expanded.  Expansion
    sees earlier lines of the same file.  A NUL byte anywhere is an error: no
    environment can carry one.  `stop` (see `build`) is asked every STOP_EVERY lines.
    """
    env = dict(env or {})
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        raise usage_error(f"env file {source} line {text.count(chr(10), 0, nul) + 1}",
                          "contains a NUL byte", "remove it: no environment variable can hold one")
    pairs, pos, lineno, n = [], 0, 1, len(text)
    while pos < n:
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        line = text[pos:eol].strip()
        here, start = lineno, pos
        pos, lineno = eol + 1, lineno + 1
        if stop is not None and here % STOP_EVERY == 0:
            _check_stop(stop)
        if not line or line.startswith("#"):
            continue
        if line.startswith("export") and line[6:7] in (" ", "\t"):
            line = line[7:].lstrip()
        name, eq, rest = line.partition("=")
        name = name.strip()
        where = f"env file {source} line {here}"
        if not eq:
            raise usage_error(where, "expected NAME=VALUE", "fix the line or comment it out with #")
        if not name or name[0] not in NAME_START or not all(ch in NAME_CHARS or ch == "." for ch in name):
            raise usage_error(where, f"invalid variable name {show(name[:40])}",
                              "names use letters, digits, _ and do not start with a digit")
        where = f"{where} {name}"
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            # Absolute index after the opening quote: the first quote after the line's '='.
            q = text.find(quote, text.index("=", start)) + 1
            end = _closing_quote(text, q, quote, where)
            raw = text[q:end]
            lines_spanned = raw.count("\n")
            line_end = text.find("\n", end)
            line_end = n if line_end < 0 else line_end
            rest = text[end + 1:line_end]
            pos, lineno = line_end + 1, here + lines_spanned + 1
            value = raw if quote == "'" else expand(_unescape(raw), env, where)
        else:
            value = rest.split(" #", 1)[0].strip()
            rest = ""
            value = expand(value, env, where)
        if rest.strip() and not rest.strip().startswith("#"):
            raise usage_error(where, "text after the closing quote", "remove it or quote the whole value")
        env[name] = value
        pairs.append((name, value))
    return pairs


def _closing_quote(text, i, quote, where):
    """Index of the quote that closes a value opened just before i (linear: one pass)."""
    if quote == "'":
        end = text.find("'", i)
    else:
        # A backslash is looked for only before the candidate closing quote: a search
        # to the end of the file per value would make many quoted lines quadratic.
        end = text.find('"', i)
        while end >= 0:
            slash = text.find("\\", i, end)
            if slash < 0:
                break
            i = slash + 2  # an escaped character: skip it
            if end < i:
                end = text.find('"', i)
    if end < 0:
        raise usage_error(where, f"unterminated {quote} quote", f"close the value with {quote}")
    return end


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _unescape(raw):
    if "\\" not in raw:
        return raw
    out, i, n = [], 0, len(raw)
    while i < n:
        slash = raw.find("\\", i)
        if slash < 0 or slash + 1 >= n:
            out.append(raw[i:])
            break
        out.append(raw[i:slash])
        ch = raw[slash + 1]
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
            i = slash + 2
        else:
            out.append("\\")
            i = slash + 1
    return "".join(out)
