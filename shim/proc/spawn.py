"""Start a child with shim's inherited signal state and chosen stdio.

The child-side work between fork and exec (new process group, terminal
foreground, stdio redirection, working directory, identity — user, groups,
capabilities, limits, umask, no_new_privs — signal dispositions and mask) is done in C
(`_shim_native.spawn`): no Python runs in the forked child, which would be unsafe
once any thread exists.  An exec failure comes back as the child's errno.
"""

import errno
import os

from shim.errors import (
    REASON_NOT_EXECUTABLE,
    REASON_NOT_FOUND,
    REASON_SETUP as REASON_SETUP_FAILED,
    REASON_USAGE,
    ShimError,
)
from shim.proc import native
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from shim.proc.identity import Identity
    from shim.proc.signals import Signals

INHERIT = -1  # a stdio slot left as shim's own descriptor


def spawn(path: str, argv: "list[str]", env: "dict[str, str]", signals: "Signals", new_group: bool = False,
          foreground: bool = False, stdin: int = INHERIT, stdout: int = INHERIT, stderr: int = INHERIT,
          cwd: "str | None" = None, identity: "Identity | None" = None, ctty: "int | None" = None) -> int:
    """Start `path` with `argv`/`env` (a dict); returns the pid.  Raises ShimError.

    foreground: when the child's stdin is shim's terminal, make the child's new
    group the terminal's foreground group (tini's isolate_child), so the terminal's
    Ctrl-C reaches it exactly once.
    cwd: the child's working directory (the resident shim itself moves to "/").
    identity: a shim.proc.identity.Identity the child takes on before exec, or None.
    ctty: 0-2, when that stdio slot is a pseudo-terminal's slave (capture on a pty): the
    child leads a new session with it as controlling terminal (not with new_group).
    """
    bargv, benv = encode_command(argv, env)
    tty = 0 if new_group and foreground and stdin == INHERIT and isatty(0) else -1
    spec = identity.spec() if identity is not None else None
    if ctty is not None:
        spec = dict(spec or {}, ctty=ctty)
    try:
        return native.spawn(os.fsencode(path), bargv, benv, sorted(signals.inherited_mask),
                            signals.child_ignored(), new_group, tty, (stdin, stdout, stderr),
                            cwd, spec)
    except OSError as err:
        step = err.filename if isinstance(err.filename, str) else "exec"
        if step == "exec":
            raise exec_error(err.errno, argv[0], benv) from None
        raise setup_error(step, err.errno, argv[0], cwd, identity) from None


# What the child was doing when it failed before exec (build/static/shim_native.c).
STEP_OBJECTS = {"cwd": "working directory", "rlimit": "resource limits",
                "bounding": "capability bounding set", "groups": "supplementary groups",
                "gid": "group", "uid": "user", "caps": "capabilities",
                "ambient": "ambient capabilities", "no_new_privs": "no_new_privs",
                "setup": "process setup"}


def setup_error(step: str, errno_value: "int | None", name: str, cwd: "str | None" = None,
                identity: "Identity | None" = None) -> ShimError:
    """The ShimError for a child that failed before exec (its identity, its directory)."""
    what = STEP_OBJECTS.get(step, step)
    if step == "cwd":
        what = f"working directory {show(cwd)}"
    elif identity is not None and step in ("uid", "gid", "groups"):
        what = f"{what} {identity.describe(step)}"
    cause = os.strerror(errno_value).lower() if errno_value else "failed"
    fix = ("run shim as root (or with CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_RESOURCE) "
           "to change the delegate's identity" if errno_value == errno.EPERM else
           "check the identity options (--user, --groups, --cap-keep, --rlimit)")
    if step == "cwd":
        fix = "start shim in a directory that exists and that the user may enter"
    return ShimError("start", f"{name}: {what}", cause, fix, reason=REASON_SETUP_FAILED)


def encode_command(argv: "list[str]", env: "dict[str, str]") -> "tuple[list[bytes], list[bytes]]":
    """argv and env as bytes for execve; a NUL byte is a usage error, not a crash."""
    for word in argv:
        if "\x00" in word:
            raise ShimError("exec", argv[0].replace("\x00", "\\0"), "an argument contains a NUL byte",
                            "remove it; a C string cannot carry NUL", reason=REASON_USAGE)
    for name, value in env.items():
        if "\x00" in name or "\x00" in value or "=" in name:
            raise ShimError("exec", argv[0], f"environment variable {show(name)} "
                            "contains a NUL byte or '=' in its name",
                            "fix the variable's source", reason=REASON_USAGE)
    bargv = [os.fsencode(w) for w in argv]
    benv = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    _check_string_limit(argv[0], bargv, benv)
    return bargv, benv


def max_arg_strlen() -> int:
    """The kernel's cap on one argument or NAME=value string, its NUL included
    (MAX_ARG_STRLEN: 32 pages, 128 KiB with 4 KiB pages)."""
    return 32 * os.sysconf("SC_PAGE_SIZE")


def _check_string_limit(name, bargv, benv):
    """execve fails with E2BIG for one string over MAX_ARG_STRLEN however small the rest is:
    name the variable (or argument) and the cap instead of "the environment is too large"."""
    cap = max_arg_strlen()
    for entry in benv:
        if len(entry) >= cap:
            var = entry.partition(b"=")[0].decode("utf-8", "replace")
            raise ShimError("exec", name, f"variable {var} is {len(entry) + 1} bytes (NAME=value "
                            f"and its NUL), over the kernel's cap of {cap} bytes for one variable "
                            "(MAX_ARG_STRLEN)", "pass a value that large as a file (--secret-file, "
                            "a mounted file) and its path in the variable", reason=REASON_USAGE)
    for i, word in enumerate(bargv):
        if len(word) >= cap:
            raise ShimError("exec", name, f"argument {i} is {len(word) + 1} bytes, over the "
                            f"kernel's cap of {cap} bytes for one argument (MAX_ARG_STRLEN)",
                            "pass it in a file", reason=REASON_USAGE)


def exec_error(errno_value: "int | None", name: str, benv: "list[bytes] | None" = None) -> ShimError:
    """The ShimError for a failed execve: 127 when something is missing, else 126."""
    if errno_value == errno.ENOENT:
        return ShimError("exec", name, "no such file (or its #! interpreter is missing)",
                         "check the path and the #! line", reason=REASON_NOT_FOUND)
    if errno_value == errno.E2BIG:  # bad input (one string is checked before: encode_command)
        size = sum(len(e) + 1 for e in benv) if benv is not None else None
        limit = os.sysconf("SC_ARG_MAX")  # a quarter of the stack limit (ulimit -s)
        what = f"the arguments and environment ({size} bytes and more) are" if size else \
            "the arguments and environment are"
        what += f" over the kernel's limit of {limit} bytes (E2BIG)"
        return ShimError("exec", name, what,
                         "pass big values as files (--secret-file, a mounted file) instead of "
                         "variables, or raise the stack limit (ulimit -s)", reason=REASON_USAGE)
    cause = os.strerror(errno_value).lower() if errno_value else "exec failed"
    return ShimError("exec", name, cause,
                     "check that it is a program for this architecture and is executable",
                     reason=REASON_NOT_EXECUTABLE)


def take_terminal_back() -> None:
    """After a foreground child ends: give the terminal back to shim's own group."""
    try:
        if isatty(0) and os.tcgetpgrp(0) != os.getpgrp():
            os.tcsetpgrp(0, os.getpgrp())  # SIGTTOU is blocked: this cannot stop us
    except OSError:
        pass


def isatty(fd: int) -> bool:
    """os.isatty that says False for a closed descriptor."""
    try:
        return os.isatty(fd)
    except OSError:
        return False
