"""`shim install`: copy the shim binary into a directory, atomically.

The install path of images that have no `cp` and no shell (FROM scratch,
distroless): an init container runs the tools image, whose ENTRYPOINT is
`/shim install`, with the destination directory as its only argument.

    shim install DIR                  DIR/shim (the running binary's arch)
    shim install --versioned DIR      DIR/<version>-<digest12>/shim, never modified afterwards
    shim install --arch all DIR       DIR/shim-linux-amd64, DIR/shim-linux-arm64, ...
    shim install --list DIR           the version directories in DIR

Every file is written as a temp file in DIR (locked while it is written),
fsynced, given mode 0755 and renamed into place, so a kill -9 at any moment
never leaves a partial binary under a final name and concurrent installers all
succeed with one intact result.  Temp files of dead installers are swept.

Stdlib only and no heavy imports: this runs inside the frozen binary.
"""

import errno
import fcntl
import os
import stat
import sys
import time

from shim import __version__
from shim.config.argv import HelpRequested, from_environ, parse_flags
from shim.config.kinds import convert
from shim.config.option import BOOL, ENUM, PATH, Option
from shim.errors import EXIT_SETUP, REASON_SETUP, REASON_USAGE, ShimError
from shim.util.fsutil import fsync_dir, write_atomically
from shim.util.platforms import ARCHES, ELF_MACHINES, running_arch
from shim.util.stdio import Stdout, write_stderr, write_stdout

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

USAGE = "shim install [--versioned] [--arch ARCH|all] [--from PATH] [--list] DIR"

MODE = 0o755  # readable + executable by everyone: frozen binaries read their own archive
TMP_PREFIX = ".shim-tmp-"
STALE_AFTER = 60.0  # seconds without a write before an unlocked temp entry is swept
CHUNK = 1 << 20
DIGEST_CHARS = 12


MSG_FROM_SOURCE = (
    "running from source, there is no single shim binary to copy",
    "pass --from PATH (or set SHIM_INSTALL_FROM) naming a built binary such as dist/shim-linux-amd64",
)
MSG_EXTRACTED = (
    "the running binary is an extracted copy in a temp directory, not the shipped file",
    "pass --from PATH (or set SHIM_INSTALL_FROM) naming the shipped binary",
)
MSG_NO_ARCH = "this image carries no linux/{arch} binary (looked for {path})"
MSG_NO_ARCH_FIX = "use the multi-arch tools image, or install the arch this image carries"
MSG_NOT_DIR = "exists and is not a directory"
MSG_NOT_DIR_FIX = ("name a directory; in the tools image /shim is the binary itself, "
                   "so mount the volume elsewhere (e.g. /install) and pass that")
MSG_VERSION_DIFFERS = "exists with different content and version directories are never modified"
MSG_VERSION_DIFFERS_FIX = "remove it by hand only if no pod uses it, then install again"


class Settings:
    """What to install, resolved once: flags > SHIM_INSTALL_* env > defaults."""

    __slots__ = ("dest", "versioned", "arch", "source", "list")

    def __init__(self, dest, versioned=False, arch="", source="", list=False):
        self.dest = dest
        self.versioned = versioned
        self.arch = arch
        self.source = source
        self.list = list


# -- settings -----------------------------------------------------------------

# The option table of `shim install` (same Option class and converters as the run options).
OPTIONS = (
    Option("versioned", ["--versioned"], None, BOOL, False,
           "write DIR/<version>-<digest12>/, never modify an existing one",
           env="SHIM_INSTALL_VERSIONED"),
    Option("arch", ["--arch"], None, ENUM, "", "amd64, arm64, or all (every arch the image carries)",
           choices=ARCHES + ("all",), env="SHIM_INSTALL_ARCH"),
    Option("source", ["--from"], None, PATH, "", "the binary to copy", metavar="PATH",
           env="SHIM_INSTALL_FROM"),
    Option("list", ["--list"], None, BOOL, False, "print <version dir> <binaries...> for each version",
           env="SHIM_INSTALL_LIST"),
    Option("dest", [], None, PATH, "", "destination directory, created if missing",
           env="SHIM_INSTALL_DIR"),
)
ENV_NAMES = {opt.name: opt.env for opt in OPTIONS}


def parse(argv: "list[str]", env: "Mapping[str, str]") -> "Settings":
    """argv and environment -> Settings (flags > SHIM_INSTALL_* > defaults).  Raises a usage ShimError."""
    flags, positional = parse_flags(argv, OPTIONS, "install", f"usage: {USAGE}", positionals=None)
    if len(positional) > 1:
        raise ShimError("parse", " ".join(positional), "shim install takes one directory",
                        f"usage: {USAGE}")
    if positional:
        flags["dest"] = convert(OPTIONS[-1], positional[0], "install DIR")
    values = {opt.name: opt.default for opt in OPTIONS}
    values.update(from_environ(OPTIONS, env))
    values.update(flags)
    if not values["dest"]:
        raise ShimError("parse", "install", "no destination directory",
                        f"usage: {USAGE} (or set SHIM_INSTALL_DIR)")
    return Settings(**values)


# -- the source binaries --------------------------------------------------------


def running_binary(env: "Mapping[str, str]", frozen: "bool | None" = None) -> str:
    """The real path of the shim binary that is running (not argv[0])."""
    if frozen is None:
        frozen = getattr(sys, "frozen", False) or "__compiled__" in globals()
    # staticx runs us from an extracted copy in /tmp and names the original file here.
    shipped = env.get("STATICX_PROG_PATH")
    if shipped:
        return os.path.realpath(shipped)
    if not frozen:
        raise ShimError("install", "shim", *MSG_FROM_SOURCE, reason=REASON_USAGE)
    path = os.path.realpath("/proc/self/exe")
    parent = os.path.basename(os.path.dirname(path))
    if parent.startswith(("_MEI", "staticx-", "onefile_")):
        raise ShimError("install", path, *MSG_EXTRACTED, reason=REASON_USAGE)
    return path


ELF_EXECUTABLE_TYPES = (2, 3)  # ET_EXEC, ET_DYN (static-pie)


def elf_arch(path: str) -> str:
    """The arch of an ELF executable from its header, or '' when it is not one we know."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError as err:
        raise ShimError("install", path, f"cannot read the source binary: {_cause(err)}",
                        "check the path and its permissions", reason=REASON_SETUP) from None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[5] not in (1, 2):
        return ""
    order = "little" if head[5] == 1 else "big"
    if int.from_bytes(head[16:18], order) not in ELF_EXECUTABLE_TYPES:  # type: ignore[arg-type]
        return ""
    return ELF_MACHINES.get(int.from_bytes(head[18:20], order), "")  # type: ignore[arg-type]


def check_source(path: str, given: "str | None") -> str:
    """The real path of the binary to copy, or a one-line error saying what it is instead.

    `given` is the path as the user wrote it (--from), None for the running binary.
    """
    shown = given or path
    if given is not None and os.path.islink(given) and not os.path.exists(given):
        raise ShimError("install", f"--from {given}", "is a dangling symlink (it points to "
                        f"{os.readlink(given)}, which does not exist)",
                        "point --from at a built shim binary", reason=REASON_USAGE)
    try:
        st = os.stat(path)
    except OSError as err:
        cause = "does not exist" if err.errno == errno.ENOENT else _cause(err)
        raise ShimError("install", f"--from {shown}", cause,
                        "pass --from PATH naming a built shim binary", reason=REASON_USAGE) from None
    if stat.S_ISDIR(st.st_mode):
        raise ShimError("install", f"--from {shown}", "is a directory",
                        "name the binary itself, e.g. dist/shim-linux-amd64", reason=REASON_USAGE)
    if not stat.S_ISREG(st.st_mode):
        raise ShimError("install", f"--from {shown}", "is not a regular file",
                        "name a built shim binary", reason=REASON_USAGE)
    if not elf_arch(path):
        raise ShimError("install", f"--from {shown}", "is not an ELF executable for "
                        + " or ".join(ARCHES), "name a built shim binary such as "
                        "dist/shim-linux-amd64", reason=REASON_USAGE)
    return path


def plan(source: str, arch: str) -> "list[tuple[str, str]]":
    """[(file name, source path)] to install for `arch` ('' = the source's own arch).

    A single arch installs as `shim`; `all` installs every arch found as
    `shim-linux-<arch>`: the source itself plus `shim-linux-<arch>` siblings
    (the tools image carries them next to /shim).
    """
    own = elf_arch(source) or running_arch()
    here = os.path.dirname(source)

    def binary_for(name: str) -> str:
        if name == own:
            return source
        path = os.path.join(here, f"shim-linux-{name}")
        if not os.path.isfile(path):
            raise ShimError("install", f"--arch {name}", MSG_NO_ARCH.format(arch=name, path=path),
                            MSG_NO_ARCH_FIX, reason=REASON_USAGE)
        found = elf_arch(path)
        if found != name:  # a sibling named for one arch must be a binary of that arch
            raise ShimError("install", path, f"is not a linux/{name} ELF executable "
                            f"({'linux/' + found if found else 'not an ELF executable'})",
                            "rebuild the tools image", reason=REASON_USAGE)
        return path

    if arch in ("", own):
        return [("shim", source)]
    if arch != "all":
        return [("shim", binary_for(arch))]
    found = [a for a in ARCHES if a == own or os.path.isfile(os.path.join(here, f"shim-linux-{a}"))]
    return [(f"shim-linux-{a}", binary_for(a)) for a in found]


# -- file mechanics ---------------------------------------------------------------


def _cause(err):
    return (os.strerror(err.errno) if err.errno else str(err)).lower()


def _setup_error(obj, err, fix):
    cause = _cause(err)
    if err.errno == errno.ENOSPC:
        fix = "free space on the destination's filesystem"
    elif err.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY):
        fix = "something else is in the way there: remove it or install into another directory"
    elif err.errno == errno.EROFS:
        fix = "the destination is read-only: mount the volume read-write for the installer"
    elif err.errno in (errno.EACCES, errno.EPERM):
        fix = (f"uid {os.getuid()} cannot write there: give the pod an fsGroup, "
               "or run the installer as the directory's owner (--user with docker/podman run)")
    return ShimError("install", obj, cause, fix, reason=REASON_SETUP)


def _sha256():
    try:
        from hashlib import sha256  # OpenSSL's when present (about 6x faster), else the builtin one
    except ImportError:
        from _sha256 import sha256  # type: ignore[no-redef]
    return sha256()


def sha256_file(path: str) -> str:
    digest = _sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def same_content(src: str, dest: str) -> bool:
    """True when dest is a regular file (not a link) with src's bytes and our mode."""
    try:
        d = os.lstat(dest)
    except FileNotFoundError:
        return False
    s = os.stat(src)
    if not (stat.S_ISREG(d.st_mode) and d.st_size == s.st_size and stat.S_IMODE(d.st_mode) == MODE):
        return False
    with open(src, "rb") as a, open(dest, "rb") as b:
        while True:
            x = a.read(CHUNK)
            if x != b.read(CHUNK):
                return False
            if not x:
                return True


def _copy(src_fd, dst_fd):
    """Kernel-side copy when possible, plain reads otherwise."""
    try:
        while os.copy_file_range(src_fd, dst_fd, 1 << 30):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src_fd, 0, os.SEEK_SET)
    os.lseek(dst_fd, 0, os.SEEK_SET)
    os.ftruncate(dst_fd, 0)
    while True:
        block = os.read(src_fd, CHUNK)
        if not block:
            return
        os.write(dst_fd, block)


def _tmp_name(directory):
    return os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}")


def write_file(src: str, directory: str, name: str) -> None:
    """Copy src to directory/name: locked temp file, fsync, mode, atomic rename.

    The lock tells the sweeper this temp file has a live writer."""
    def fill(fd: int) -> None:
        src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _copy(src_fd, fd)
        finally:
            os.close(src_fd)

    write_atomically(os.path.join(directory, name), fill, MODE, tmp=_tmp_name(directory), lock=True)


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree(path) -> None:
    """Remove a temp entry: a file, or a directory of files (what we create)."""
    if os.path.isdir(path) and not os.path.islink(path):
        for name in os.listdir(path):
            _unlink(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.unlink(path)


def sweep(directory: str, now: "float | None" = None, stale_after: float = STALE_AFTER) -> None:
    """Remove temp entries left by killed installers: old, and nobody holds their lock."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            if now - os.lstat(path).st_mtime < stale_after:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _remove_tree(path)
        except OSError:
            pass  # a live installer holds it, or it is already gone
        finally:
            os.close(fd)


# -- the two layouts ------------------------------------------------------------


def install_flat(directory: str, files: "list[tuple[str, str]]") -> "list[tuple[str, str]]":
    """DIR/<name> for each file; a file already holding the same bytes is left alone."""
    done = []
    for name, src in files:
        dest = os.path.join(directory, name)
        if same_content(src, dest):
            done.append(("unchanged", dest))
            continue
        write_file(src, directory, name)
        done.append(("installed", dest))
    if any(state == "installed" for state, _ in done):
        fsync_dir(directory)
    return done


def version_name(files: "list[tuple[str, str]]", version: str = __version__) -> str:
    """<version>-<digest12>: of the binary, or of the set when several arches are installed."""
    if len(files) == 1:
        digest = sha256_file(files[0][1])
    else:
        combined = _sha256()
        combined.update("".join(f"{sha256_file(src)}  {name}\n" for name, src in files).encode())
        digest = combined.hexdigest()
    return f"{version}-{digest[:DIGEST_CHARS]}"


def install_versioned(directory: str, files: "list[tuple[str, str]]",
                      version: str = __version__) -> "list[tuple[str, str]]":
    """DIR/<version>-<digest12>/<name>: built in a locked temp dir, renamed into place once.

    An existing version directory is never written to: pods may be running it.
    """
    target = os.path.join(directory, version_name(files, version))
    if os.path.isdir(target):
        return _check_version(target, files)
    # Asked again, not inferred from the isdir above: a concurrent installer may have
    # renamed its directory into place in between (then it is a directory, and fine).
    if os.path.lexists(target) and not os.path.isdir(target):
        raise ShimError("install", target, "exists and is not a version directory",
                        "remove it, or install into another directory", reason=REASON_USAGE)
    tmp = _tmp_name(directory)
    os.mkdir(tmp, 0o755)
    fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for name, src in files:
            write_file(src, tmp, name)
        os.fchmod(fd, 0o755)
        os.fsync(fd)
        try:
            os.rename(tmp, target)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            _remove_tree(tmp)  # another installer got there first
            return _check_version(target, files)
    except BaseException:
        if os.path.exists(tmp):
            _remove_tree(tmp)
        raise
    finally:
        os.close(fd)
    fsync_dir(directory)
    return [("installed", os.path.join(target, name)) for name, _ in files]


def _check_version(target, files):
    for name, src in files:
        if not same_content(src, os.path.join(target, name)):
            raise ShimError("install", target, MSG_VERSION_DIFFERS, MSG_VERSION_DIFFERS_FIX, reason=REASON_SETUP)
    return [("unchanged", os.path.join(target, name)) for name, _ in files]


def list_versions(directory: str) -> "list[tuple[str, Any]]":
    """[(version directory, [binaries])] sorted by name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as err:
        raise _setup_error(directory, err, "check that the directory exists") from None
    found: list = []
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        try:
            entries = os.listdir(path)
        except OSError as err:  # one unreadable version must not hide the others
            found.append((name, err))
            continue
        binaries = sorted(b for b in entries if b == "shim" or b.startswith("shim-linux-"))
        if binaries:
            found.append((name, binaries))
    return found


# -- the command -------------------------------------------------------------------


def run(settings: "Settings", env: "Mapping[str, str]", out: "Any",
        say: "Callable[[str], object] | None" = None) -> int:
    if settings.list:
        return _list(settings.dest, out, say)
    # The source, then which files to write, then write them.
    if settings.source:
        source = check_source(os.path.realpath(settings.source), settings.source)
    else:
        source = check_source(running_binary(env), None)
    files = plan(source, settings.arch)
    _check_destination(settings, files)
    try:
        os.makedirs(settings.dest, exist_ok=True)
        sweep(settings.dest)
        if settings.versioned:
            done = install_versioned(settings.dest, files)
        else:
            done = install_flat(settings.dest, files)
    except OSError as err:
        raise _setup_error(settings.dest, err, "check that the directory is writable and has space") from None
    for state, path in done:
        out.write(f"{state} {path}\n")
    out.flush()
    return 0


def _list(directory, out, say):
    """Print each version; an unreadable one is reported (exit 118) without hiding the rest."""
    failed = 0
    for name, binaries in list_versions(directory):
        if isinstance(binaries, OSError):
            failed += 1
            (say or write_stderr)(f"shim: list {os.path.join(directory, name)}: "
                                  f"{_cause(binaries)}; run as a user who can read it\n")
            continue
        out.write(f"{name} {' '.join(binaries)}\n")
    return EXIT_SETUP if failed else 0


def _check_destination(settings, files):
    """Say what is in the way before writing anything (not 'File exists; ...has space')."""
    dest = settings.dest
    if os.path.islink(dest) and not os.path.exists(dest):
        raise ShimError("install", dest, f"is a dangling symlink (it points to {os.readlink(dest)})",
                        "create the directory it points to, or name another directory",
                        reason=REASON_USAGE)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ShimError("install", dest, MSG_NOT_DIR, MSG_NOT_DIR_FIX, reason=REASON_USAGE)
    if settings.versioned:
        return
    for name, _ in files:
        path = os.path.join(dest, name)
        if os.path.isdir(path) and not os.path.islink(path):
            raise ShimError("install", path, "is a directory where the binary should be written",
                            "remove it, or install into another directory", reason=REASON_USAGE)


def main(argv: "list[str]", env: "Mapping[str, str] | None" = None) -> int:
    env = os.environ if env is None else env
    try:
        settings = parse(argv, env)
    except HelpRequested:
        write_stdout(f"usage: {USAGE}\n")
        return 0
    return run(settings, env, Stdout())
