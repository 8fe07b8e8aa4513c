"""Where resolved values land on disk: one file, or a Kubernetes Secret-volume directory.

`write_file` replaces one file atomically (temp file, fsync, rename). `write_dir`
projects a {key: bytes} payload the way the kubelet's AtomicWriter
(kubernetes pkg/volume/util/atomic_writer.go) does for Secret and ConfigMap
volumes, so code that reads `DIR/key` or watches `DIR/..data` with inotify works
unchanged:

    DIR/key        -> ..data/key                        (one symlink per key)
    DIR/..data     -> ..2026_11_21_20_07_21.1234567890  (swapped by rename(..data_tmp))
    DIR/..2026_11_21_20_07_21.1234567890/key            (the real files)

Readers therefore see one whole generation or the next, never a mix. Errors are
one-line ShimErrors (read-only mount, permission) and nothing partial stays behind.
"""

import errno
import os
import time

from shim.errors import REASON_SETUP, ShimError
from shim.util.fsutil import fsync_dir
from shim.util.text import show


def _random_bits():
    """A random suffix for temporary names (os.urandom: importing `random` costs start-up time)."""
    return int.from_bytes(os.urandom(4), "big")


def _rmtree(path, ignore_errors=False) -> None:
    import shutil  # only directory targets remove trees: not paid by env or file targets

    shutil.rmtree(path, ignore_errors=ignore_errors)

DATA = "..data"
DATA_TMP = "..data_tmp"
TS_FORMAT = "..%Y_%m_%d_%H_%M_%S."  # the kubelet's time.Now().UTC().Format("..2006_01_02_15_04_05.")
MAX_NAME = 255  # the kubelet's maxFileNameLength
# statfs f_type names of filesystems that never touch a disk (/proc/self/mountinfo field 9).
MEMORY_FS = ("tmpfs", "ramfs")

# The fix part of each message, by errno: what the user does about it.
FIXES = {
    errno.EROFS: "mount a writable volume there (emptyDir with medium Memory, tmpfs) or choose another path",
    errno.EACCES: "run shim as a user that may write there or choose another path",
    errno.EPERM: "run shim as a user that may write there (changing the owner needs root or CAP_CHOWN)",
    errno.ENOSPC: "free space on that filesystem or choose another path",
    errno.ENOTDIR: "a parent of the path is a file; choose another path",
    errno.EISDIR: "a directory is in the way; remove it or choose another path",
}


# The owner of what is written for the delegate when a target names none: `--user`
# sets it (shim/proc/identity.py) so a 0400 secret file is readable by the delegate.
_default_owner: "tuple[int | None, int | None]" = (None, None)


def set_default_owner(uid: "int | None", gid: "int | None") -> None:
    """Files and directories written from now on without an explicit owner get uid:gid."""
    global _default_owner
    _default_owner = (uid, gid)


def default_owner() -> "tuple[int | None, int | None]":
    """(uid, gid) of what is written for the delegate, (None, None) when it is shim's own."""
    return _default_owner


class Staged:
    """A write prepared but not yet visible: `commit()` publishes it with one rename,
    `abort()` removes every trace (temp files, a new generation, links and directories it
    created).  Writing several targets stages them all first, so a failure leaves none
    of them behind (all-or-nothing)."""

    def __init__(self, commit, abort):
        self._commit, self._abort = commit, abort

    def commit(self) -> None:
        self._commit()

    def abort(self) -> None:
        self._abort()


def write_all_or_nothing(writes: "list") -> int:  # [(stage_file or stage_dir, its arguments)]
    """Stage every (stage_fn, args) write, then commit them all; on a failure abort what
    was staged and re-raise.  Returns how many were published."""
    staged = []
    try:
        for stage, args in writes:
            item = stage(*args)
            if item is not None:
                staged.append(item)
    except BaseException:
        for item in reversed(staged):
            item.abort()
        raise
    for item in staged:  # renames: they do not fail for lack of space or permission
        item.commit()
    return len(staged)


def write_file(path: str, data: bytes, mode: int = 0o400, uid: "int | None" = None,
               gid: "int | None" = None) -> None:
    """Replace `path` with `data` (bytes) atomically, `mode` and owner set before it appears.

    Missing parent directories are created (and removed again if the write fails).
    """
    stage_file(path, data, mode, uid, gid).commit()


def stage_file(path: str, data: bytes, mode: int = 0o400, uid: "int | None" = None,
               gid: "int | None" = None) -> "Staged":
    """Write `data` to a temp file beside `path` (owner, mode, fsync); Staged."""
    if uid is None and gid is None:
        uid, gid = _default_owner  # --user: the delegate's (set_default_owner)
    given = path
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    _check_name(given, path, name)
    if os.path.isdir(path) and not os.path.islink(path):  # the rename would fail late
        raise _error("write", f"file {path}", OSError(errno.EISDIR, "is a directory"))
    created = _makedirs(directory, path)
    tmp = os.path.join(directory, f".{name}.shim-{os.getpid()}-{_random_bits()}")
    try:
        _write_new(tmp, data, mode, uid, gid)  # owner first: chown clears set-id bits
    except OSError as err:
        _rmdirs(created)
        raise _error("write", f"file {path}", err) from None

    def commit() -> None:
        try:
            os.rename(tmp, path)
        except OSError as err:
            abort()
            raise _error("write", f"file {path}", err) from None
        fsync_dir(directory, strict=False)

    def abort() -> None:
        _remove(tmp)
        _rmdirs(created)

    return Staged(commit, abort)


def write_dir(directory: str, payload: "dict[str, bytes]", mode: int = 0o400, uid: "int | None" = None,
              gid: "int | None" = None) -> bool:
    """Project {key: bytes} into `directory` in Kubernetes Secret-volume shape.

    Returns True when a new generation was published, False when the content,
    modes and keys were already what `payload` asks for (nothing is swapped then,
    so watchers of `..data` see no event).
    """
    staged = stage_dir(directory, payload, mode, uid, gid)
    if staged is None:
        return False
    staged.commit()
    return True


def stage_dir(directory: str, payload: "dict[str, bytes]", mode: int = 0o400, uid: "int | None" = None,
              gid: "int | None" = None) -> "Staged | None":
    """Write a new generation and the links to it, but not the `..data` swap; Staged, or
    None when the directory already holds exactly `payload`."""
    if uid is None and gid is None:
        uid, gid = _default_owner  # --user: the delegate's (set_default_owner)
    directory = os.path.abspath(directory)
    for key in payload:
        _check_key(directory, key)
    created = _makedirs(directory, directory)
    links, generation = [], None
    try:
        old = _current_generation(directory)
        _check_visible(directory, payload)
        stale = set(_listdir(os.path.join(directory, old))) - set(payload) if old else set()
        if old and not stale and _same(os.path.join(directory, old), payload, mode, uid, gid):
            _link_visible(directory, payload)  # as the kubelet does: repair missing links only
            return None
        # Links first (Linux allows dangling ones): whoever sees the new ..data finds every key.
        links = _link_visible(directory, payload)
        generation = _write_generation(directory, payload, mode, uid, gid)
    except (OSError, ShimError) as err:
        for link in links:
            _remove(link)
        _rmdirs(created)
        if isinstance(err, ShimError):
            raise
        raise _error("write", f"directory {directory}", err) from None

    def commit() -> None:
        try:
            _swap(directory, generation)
        except OSError as err:
            abort()
            raise _error("write", f"directory {directory}", err) from None
        for key in stale:
            if _link_of(directory, key) == os.path.join(DATA, key):
                _remove(os.path.join(directory, key))
        _remove_old_generations(directory)
        _fsync_dir(directory)

    def abort() -> None:
        _rmtree(os.path.join(directory, generation), ignore_errors=True)
        for link in links:
            _remove(link)
        _rmdirs(created)

    return Staged(commit, abort)


def memory_backed(path: str) -> bool:
    """True when `path` (or its nearest existing parent) is on tmpfs or ramfs.

    Reads /proc/self/mountinfo (statfs's f_type is not in the stdlib); without
    /proc the answer is False, which callers report as "not known to be in memory".
    """
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and probe != "/":
        probe = os.path.dirname(probe)
    probe = os.path.realpath(probe)
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return False
    best, best_type = "", None
    for line in lines:
        mount_point, fs_type = _mountinfo_fields(line)
        if mount_point is None:
            continue
        inside = probe == mount_point or probe.startswith(mount_point.rstrip("/") + "/")
        # Later lines win on an equal mount point: they are mounted over earlier ones.
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type in MEMORY_FS


# -- the directory projection, step by step (kubelet order) ------------------------------

def _write_generation(directory, payload, mode, uid, gid):
    """Write a new timestamped generation (not visible yet); its name."""
    generation = _new_generation_dir(directory)
    try:
        for key, data in sorted(payload.items()):
            _write_new(os.path.join(directory, generation, key), data, mode, uid, gid)
        _fsync_dir(os.path.join(directory, generation))
    except OSError:
        _rmtree(os.path.join(directory, generation), ignore_errors=True)
        raise
    return generation


def _swap(directory, generation):
    """Point `..data` at `generation` with one rename: the atomic step readers rely on."""
    tmp_link = os.path.join(directory, DATA_TMP)
    try:
        _remove(tmp_link)  # a crashed earlier run may have left one
        os.symlink(generation, tmp_link)
        os.rename(tmp_link, os.path.join(directory, DATA))
    except OSError:
        _remove(tmp_link)
        raise


def _new_generation_dir(directory):
    """Create `..YYYY_MM_DD_HH_MM_SS.<random>` (Go's os.MkdirTemp naming), mode 0755."""
    stamp = time.strftime(TS_FORMAT, time.gmtime())
    for _ in range(100):
        name = stamp + str(_random_bits())
        try:
            os.mkdir(os.path.join(directory, name), 0o700)
        except FileExistsError:
            continue
        # 0755 as the kubelet sets it: other users must traverse to files their mode allows.
        os.chmod(os.path.join(directory, name), 0o755)
        return name
    raise OSError(errno.EEXIST, "could not create a new generation directory")


def _current_generation(directory):
    """The generation `..data` points at, or None before the first write."""
    try:
        target = os.readlink(os.path.join(directory, DATA))
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.EINVAL:  # ..data exists but is not a symlink: not ours
            raise OSError(errno.EEXIST, f"{DATA} is not a symlink") from None
        raise
    return target if os.path.isdir(os.path.join(directory, target)) else None


def _same(generation_path, payload, mode, uid, gid) -> bool:
    """Whether the current generation already holds exactly `payload` as asked."""
    for key, data in payload.items():
        try:
            info = os.stat(os.path.join(generation_path, key))
            with open(os.path.join(generation_path, key), "rb") as handle:
                current = handle.read()
        except OSError:
            return False
        if current != data or (info.st_mode & 0o7777) != mode:
            return False
        if (uid is not None and info.st_uid != uid) or (gid is not None and info.st_gid != gid):
            return False
    return True


def _check_visible(directory, payload):
    """Refuse to shadow a user's own file: every visible name must be ours or absent."""
    for key in payload:
        target = _link_of(directory, key)
        if target is not None and target != os.path.join(DATA, key):
            raise ShimError("write", f"directory {directory}",
                            f"{key} exists and is not a link into {DATA}",
                            "remove it or choose another directory", reason=REASON_SETUP)


def _link_of(directory, key):
    """Where DIR/key links to; None if absent; "" if it is not a symlink."""
    try:
        return os.readlink(os.path.join(directory, key))
    except FileNotFoundError:
        return None
    except OSError:
        return ""


def _link_visible(directory, payload):
    """Create the missing `key -> ..data/key` links; return the ones created."""
    created = []
    for key in sorted(payload):
        visible = os.path.join(directory, key)
        if not os.path.lexists(visible):
            os.symlink(os.path.join(DATA, key), visible)
            created.append(visible)
    return created


def _remove_old_generations(directory) -> None:
    """Remove every timestamped generation but the current one (also ones a crash left)."""
    current = os.readlink(os.path.join(directory, DATA))
    for name in _listdir(directory):
        if name.startswith("..") and name not in (DATA, DATA_TMP, current) and name[2:3].isdigit():
            _rmtree(os.path.join(directory, name), ignore_errors=True)


# -- small helpers -----------------------------------------------------------------------

def _write_new(path, data, mode, uid, gid):
    """Create `path` (must not exist), owner and mode first, then the bytes, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        os.fchmod(fd, mode)  # after chown: chown clears set-id bits
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        _remove(path)
        raise
    os.close(fd)


def _makedirs(directory, target):
    """Create `directory` and missing parents (0755); return the ones created, deepest first."""
    missing = []
    probe = directory
    while not _exists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    created: list = []
    try:
        for path in reversed(missing):
            os.mkdir(path, 0o755)
            created.insert(0, path)
    except OSError as err:
        _rmdirs(created)
        raise _error("create", f"directory {path} for {target}", err) from None
    return created


def _exists(path) -> bool:
    """False only when `path` is really absent (EACCES is not absence: mkdir reports it)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _rmdirs(paths) -> None:
    for path in paths:
        try:
            os.rmdir(path)
        except OSError:
            pass


def _remove(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _fsync_dir(directory) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def _check_name(given, path, name):
    if given.endswith(("/", "/.", "/..")) or given in (".", "..") or name in ("", ".", ".."):
        raise ShimError("write", f"file {given}", "the path names a directory (it ends in "
                        "'/' or '.'), not a file", "write the file's name, or use --secret-dir "
                        "for every key of a secret", reason=REASON_SETUP)
    if len(name.encode()) > MAX_NAME:
        raise ShimError("write", f"file {path}", "the file name is longer than 255 bytes",
                        "choose a shorter path", reason=REASON_SETUP)


def key_problem(key: str) -> "str | None":
    """Why `key` cannot be a file name in a Secret-volume directory, or None.  `..`-names
    are the writer's own (as the kubelet reserves them)."""
    if not isinstance(key, str) or not key:
        return "empty"
    if "/" in key:
        return "it contains '/'"
    if "\0" in key:
        return "it contains NUL"
    if key.startswith(".."):
        return "names starting with '..' are the directory's own"
    if key == ".":
        return "'.' is the directory itself"
    if len(key.encode("utf-8", "surrogateescape")) > MAX_NAME:
        return "longer than 255 bytes"
    return None


def _check_key(directory, key):
    problem = key_problem(key)
    if problem:
        raise ShimError("write", f"directory {directory}",
                        f"key {show(key)} cannot be a file name ({problem})",
                        "rename the key at the source or use an env target instead")


def _mountinfo_fields(line):
    """(mount point, filesystem type) of one /proc/self/mountinfo line."""
    left, sep, right = line.partition(" - ")
    fields = left.split(" ")
    if not sep or len(fields) < 5:
        return None, None
    return _unescape(fields[4]), right.split(" ", 1)[0]


def _unescape(text):
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 …)."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _error(operation, obj, err):
    cause = (err.strerror or str(err)).lower()
    return ShimError(operation, obj, cause, FIXES.get(err.errno, "check the path and its permissions"),
                     reason=REASON_SETUP)
