"""Which command to run, and where its executable is.

The delegate comes from, in order: the words after `--`; `SHIM_ENTRYPOINT` /
`--entrypoint` (split with shell-word rules, never given to a shell unless it
says `sh -c` itself); the image's recorded ENTRYPOINT + CMD (`--image-entrypoint`),
optionally a per-platform map like Tekton's; the config file's `command`.  A first word
found in the config's `commands` map (SageMaker's `train`/`serve`) is replaced by its argv.
"""

import os

from shim.errors import REASON_NOT_EXECUTABLE, REASON_NOT_FOUND, ShimError, usage_error

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.config.options import Config

# The search path when the delegate's environment has no PATH (what execvp and
# Docker use); --prepend-env/--append-env PATH=... start from it too.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NO_COMMAND_FIX = ("pass one after '--' (shim -- COMMAND ARGS...), or set SHIM_ENTRYPOINT "
                  "or --image-entrypoint")


def command_from(config: "Config", machine: "str | None" = None) -> "list[str]":
    """The delegate's argv as a list of strings; raises a usage error when there is none."""
    argv = _command(config, machine)
    if not argv[0]:  # `shim -- ''`: execve would say "is a directory" or worse
        raise usage_error("command", "the command name is empty",
                          "name a program after '--' (or in the entrypoint / config command)")
    return argv


def _command(config, machine):
    if config.command:
        return list(config.command)
    if config.entrypoint is not None:
        words = split_words(config.entrypoint, config.source_of("entrypoint"))
        if words:
            return words
    if config.image_entrypoint is not None:
        return from_image(config.image_entrypoint, machine, config.source_of("image_entrypoint"))
    err = ShimError("resolve", "delegate", "no command given", NO_COMMAND_FIX)
    err.show_usage = True
    raise err


def by_first_word(argv: "list[str]", commands: "dict[str, list[str]]") -> "list[str]":
    """SageMaker starts images as `IMAGE train` / `IMAGE serve`: the config's `commands`
    map turns that word into the delegate (remaining words are appended)."""
    if argv and argv[0] in commands:
        return list(commands[argv[0]]) + list(argv[1:])
    return argv


_BLANKS = " \t\r\n"


def split_words(text: str, where: str = "--entrypoint") -> "list[str]":
    """Shell words of `text` as `shlex.split(text, posix=True)` gives them, in linear time.

    Hand-written because shlex is quadratic on a long quoted word (a 1 MB unterminated
    quote takes 16 s there) and costs an import.  Rules: blanks separate words;
    'single quotes' are literal; in "double quotes" a backslash escapes only \\ and ";
    outside quotes a backslash escapes any character.  Nothing is expanded or run.
    """
    cur: list[str]
    words, cur, have, i, n = [], [], False, 0, len(text)
    while i < n:
        c = text[i]
        if c in _BLANKS:
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise _split_error(where, "no closing ' quote")
            cur.append(text[i + 1:end])
            have, i = True, end + 1
        elif c == '"':
            i = _double_quoted(text, i + 1, cur, where)
            have = True
        elif c == "\\":
            if i + 1 >= n:
                raise _split_error(where, "a backslash at the end escapes nothing")
            cur.append(text[i + 1])
            have, i = True, i + 2
        else:
            j = i + 1
            while j < n and text[j] not in _BLANKS and text[j] not in "'\"\\":
                j += 1
            cur.append(text[i:j])
            have, i = True, j
    if have:
        words.append("".join(cur))
    for word in words:
        if "\x00" in word:
            raise usage_error(where, "contains a NUL byte", "remove it")
    return words


def _double_quoted(text, i, cur, where):
    """Append the inside of a "..." starting at i; return the index after the closing quote.

    A backslash is looked for only before the quote that would close the word, and
    each search starts where the last one stopped: every character is scanned a
    bounded number of times, however many words the text has.
    """
    quote = text.find('"', i)
    while True:
        if quote < 0:
            raise _split_error(where, 'no closing " quote')
        slash = text.find("\\", i, quote)
        if slash < 0:
            cur.append(text[i:quote])
            return quote + 1
        cur.append(text[i:slash])
        nxt = text[slash + 1:slash + 2]
        if nxt in ('"', "\\"):
            cur.append(nxt)
            i = slash + 2
        else:
            cur.append("\\")
            i = slash + 1
        if quote < i:
            quote = text.find('"', i)


def _split_error(where, cause):
    return usage_error(where, f"cannot split into words ({cause})", "balance the quotes")


def running_platform(machine: "str | None" = None) -> str:
    from shim.util.platforms import platform_of

    return platform_of(machine)


def from_image(spec: "Any", machine: "str | None" = None, where: str = "--image-entrypoint") -> "list[str]":
    """argv from an image config: {"Entrypoint": [...], "Cmd": [...]}, its {"config": {...}}
    wrapper, a bare argv list, or a map of platform -> one of those (Tekton's shape)."""
    if isinstance(spec, dict) and any(key.startswith("linux/") for key in spec):
        plat = running_platform(machine)
        match = spec.get(plat)
        if match is None:  # "linux/arm64/v8" matches "linux/arm64"
            match = next((v for k, v in sorted(spec.items()) if k.startswith(plat + "/")), None)
        if match is None:
            raise usage_error(where, f"no entry for platform {plat}",
                              "add it to the platform map (keys like linux/amd64, linux/arm64)")
        spec = match
    if isinstance(spec, dict) and isinstance(spec.get("config"), dict):
        spec = spec["config"]
    if isinstance(spec, list):
        argv = spec
    elif isinstance(spec, dict):
        argv = _as_list(spec.get("Entrypoint"), where + " Entrypoint") + \
            _as_list(spec.get("Cmd"), where + " Cmd")
    else:
        argv = None
    if not argv or not all(isinstance(word, str) for word in argv):
        raise usage_error(where, "no command in it",
                          'give {"Entrypoint": [...], "Cmd": [...]} with at least one word')
    if any("\x00" in word for word in argv):
        raise usage_error(where, "a word contains a NUL byte", "remove it")
    return list(argv)


def _as_list(value, where):
    if value is None:
        return []
    if isinstance(value, str):  # shell form, as `docker inspect` shows it for ENTRYPOINT cmd
        return split_words(value, where)
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    raise usage_error(where, "expected a list of strings", 'write ["cmd", "arg"]')


def find_executable(name: str, env: "Mapping[str, str]", can_exec: "Callable[[str], bool] | None" = None) -> str:
    """Absolute path of `name` looked up in the delegate's PATH, like execvp.

    can_exec(path): whether the delegate may execute path (default: os.access for shim;
    with --user, shim.proc.identity.Identity.can_execute, so the lookup is the user's).
    Raises ShimError with exit 127 (not found) or 126 (found, not executable).
    """
    can_exec = can_exec or _access
    if "/" in name:
        return _check(name, name, can_exec)
    path = env.get("PATH", DEFAULT_PATH)
    denied = None
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if _is_exec_file(candidate, st, can_exec):
            return candidate
        denied = denied or candidate
    if denied:
        return _check(denied, name, can_exec)
    raise ShimError("exec", name, "command not found in PATH",
                    "check the command name, the image, and PATH", reason=REASON_NOT_FOUND)


def _access(path):
    return os.access(path, os.X_OK)


def _is_exec_file(path, st, can_exec):
    import stat

    return stat.S_ISREG(st.st_mode) and can_exec(path)


def _check(path, name, can_exec=_access):
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ShimError("exec", name, "no such file", "check the path and the image",
                        reason=REASON_NOT_FOUND) from None
    except OSError as err:
        raise ShimError("exec", name, (err.strerror or str(err)).lower(),
                        "check the permissions of the file and its directories",
                        reason=REASON_NOT_EXECUTABLE) from None
    if stat.S_ISDIR(st.st_mode):
        raise ShimError("exec", name, "is a directory", "name the program, not its directory",
                        reason=REASON_NOT_EXECUTABLE)
    if not can_exec(path):
        raise ShimError("exec", name, "permission denied (not executable)",
                        f"chmod +x {path}, or run it through its interpreter",
                        reason=REASON_NOT_EXECUTABLE)
    return path
