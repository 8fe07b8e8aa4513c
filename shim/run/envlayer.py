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

from shim.errors import ShimError, usage_error

# Variables a freezer's bootloader sets for itself (PyInstaller, staticx, Nuitka).
RUNTIME_PREFIXES = ("_PYI_", "_MEI", "STATICX_", "NUITKA_", "__NUITKA", "PYINSTALLER_RESET_")


def inherited(environ, frozen=None):
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


def is_frozen():
    """True inside a PyInstaller, Nuitka or shim static build."""
    return bool(getattr(sys, "frozen", False) or "__compiled__" in globals())


def build(base, config, read=None):
    """Apply the configured operations to `base` and return the new environment."""
    env = dict(base)
    for path in config.env.files:
        for name, value in parse_dotenv(_read_env_file(path, read), path, env):
            env[name] = value
    for name, value in config.env.set.items():
        env[name] = expand(value, env)
    for name, value in config.env.default.items():
        if name not in env:
            env[name] = expand(value, env)
    for name, value in config.env.prepend.items():
        env[name] = _join(expand(value, env), env.get(name))
    for name, value in config.env.append.items():
        env[name] = _join(env.get(name), expand(value, env))
    for name in config.env.unset:
        env.pop(name, None)
    return env


def _join(first, second):
    return os.pathsep.join(part for part in (first, second) if part)


def _read_env_file(path, read=None):
    try:
        if read is not None:
            return read(path)
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise usage_error(f"env file {path}", "not UTF-8 text", "save it as UTF-8") from None
    except OSError as err:
        raise ShimError("read env file", path, (err.strerror or str(err)).lower(),
                        "check the path given by --env-file and its permissions") from None


# -- ${VAR} expansion -----------------------------------------------------------
def expand(value, env, where="value"):
    """Expand ${NAME}, ${NAME:-fallback}, ${NAME-fallback} and $$; unknown NAME is ''."""
    if "$" not in value:
        return value
    out, i, n = [], 0, len(value)
    while i < n:
        c = value[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if value.startswith("${", i):
            end = value.find("}", i + 2)
            if end < 0:
                raise usage_error(where, f"unterminated ${{ in {value[i:i + 20]!r}",
                                  "close it with } or write $$ for a literal $")
            out.append(_lookup(value[i + 2:end], env, where))
            i = end + 1
            continue
        out.append(c)  # a lone $ or $(...) stays literal: no command substitution ever
        i += 1
    return "".join(out)


def _lookup(expr, env, where):
    for op in (":-", "-"):
        name, sep, fallback = expr.partition(op)
        if sep:
            _check_name(name, where)
            current = env.get(name)
            if current is None or (op == ":-" and current == ""):
                return expand(fallback, env, where)
            return current
    _check_name(expr, where)
    return env.get(expr, "")


def _check_name(name, where):
    if not name or not (name[0].isalpha() or name[0] == "_") or \
            not all(ch.isalnum() or ch == "_" for ch in name) or not name.isascii():
        raise usage_error(where, f"invalid variable reference ${{{name}}}",
                          "use ${NAME} with letters, digits and _")


# -- dotenv -------------------------------------------------------------------------
def parse_dotenv(text, source, env=None):
    """[(name, value)] from dotenv text.

    Syntax: `NAME=VALUE`, optional `export `, `#` comments, blank lines;
    'single quotes' are literal; "double quotes" allow \\n \\t \\" \\\\ escapes,
    ${VAR} expansion and span lines; unquoted values are trimmed, lose a ` #comment`
    and are expanded.  Expansion sees earlier lines of the same file.
    """
    env = dict(env or {})
    pairs, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        lineno, line = i + 1, lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        name, eq, rest = line.partition("=")
        name = name.strip()
        where = f"env file {source} line {lineno}"
        if not eq:
            raise usage_error(where, "expected NAME=VALUE", "fix the line or comment it out with #")
        if not name or not (name[0].isalpha() or name[0] == "_") or \
                not all(ch.isalnum() or ch in "_." for ch in name):
            raise usage_error(where, f"invalid variable name {name[:40]!r}",
                              "names use letters, digits, _ and do not start with a digit")
        rest = rest.lstrip()
        if rest.startswith("'"):
            value, rest = _until_quote(rest[1:], "'", lines, i, where)
            i += value.count("\n")
        elif rest.startswith('"'):
            raw, rest = _until_quote(rest[1:], '"', lines, i, where)
            i += raw.count("\n")
            value = expand(_unescape(raw), env, where)
        else:
            value = rest.split(" #", 1)[0].strip()
            rest = ""
            value = expand(value, env, where)
        if rest.strip() and not rest.strip().startswith("#"):
            raise usage_error(where, "text after the closing quote", "remove it or quote the whole value")
        env[name] = value
        pairs.append((name, value))
    return pairs


def _until_quote(rest, quote, lines, next_index, where):
    """Text up to the matching unescaped quote, continuing onto later lines."""
    buf, j = rest, next_index
    while True:
        k, escaped = 0, False
        while k < len(buf):
            ch = buf[k]
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                return buf[:k], buf[k + 1:]
            k += 1
        if j >= len(lines):
            raise usage_error(where, f"unterminated {quote} quote", f"close the value with {quote}")
        buf += "\n" + lines[j]
        j += 1


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _unescape(raw):
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)
