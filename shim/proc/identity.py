"""Who the delegate runs as: user, groups, capabilities, limits, umask, no_new_privs.

What entrypoint scripts do with `chown` + `gosu`/`su-exec`/`setpriv`, decided here in
Python and applied in C between fork and exec (build/static/shim_native.c,
`apply_identity`): shim itself keeps its own identity, as PID 1 must to signal and reap.

Names are resolved in the image's own /etc/passwd and /etc/group, parsed here, never
through NSS: a static binary has no NSS modules, and a numeric user needs no file at all
(scratch, distroless).  Every parser refuses bad input with one usage error (exit 125).
"""

import os

from shim.errors import ShimError, usage_error
from shim.util.text import show

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

# Capability numbers (linux/capability.h); names as `capsh`/Docker write them.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}
CAP_HELP = "use names like NET_BIND_SERVICE, CHOWN, SYS_PTRACE (with or without CAP_), or all"

# setrlimit resources (asm-generic/resource.h, the same on x86_64 and arm64); the names
# are those of `prlimit` and Docker's --ulimit.
RLIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
           "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
           "nice": 13, "rtprio": 14, "rttime": 15}
RLIM_INFINITY = 2**64 - 1
RLIMIT_HELP = "write NAME=SOFT[:HARD] with NAME one of " + ", ".join(RLIMITS) + \
    " and numbers or 'unlimited'"
MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel
_DIGITS = frozenset("0123456789")


# -- parsers (pure) -------------------------------------------------------------------
def _number(text, where, what, limit):
    """An ASCII decimal number 0..limit; None when `text` is not one (a name, then)."""
    if not text or not set(text) <= _DIGITS:
        return None
    if len(text) > 20 or int(text) > limit:
        raise usage_error(where, f"{what} {show(text)} out of range", f"use 0 to {limit}")
    return int(text)


def _clean(text, where, what):
    if not isinstance(text, str) or not text.strip():
        raise usage_error(where, f"empty {what}", f"give a {what} name or number")
    if "\x00" in text or any(c in text for c in "\n\r"):
        raise usage_error(where, f"{what} {show(text)} contains a NUL byte or a line break",
                          "remove it")
    return text.strip()


def parse_user(spec: str, where: str = "--user") -> "tuple[str | int, str | int | None]":
    """'USER[:GROUP]' -> (user, group or None), each a str name or an int id."""
    spec = _clean(spec, where, "user")
    user, sep, group = spec.partition(":")
    if not user or (sep and not group):
        raise usage_error(where, f"invalid user {show(spec)}", "write USER or USER:GROUP")
    u = _number(user, where, "uid", MAX_ID)
    g = _number(group, where, "gid", MAX_ID) if group else None
    _name_ok(user, where, "user") if u is None else None
    _name_ok(group, where, "group") if group and g is None else None
    return (user if u is None else u), (None if not group else (group if g is None else g))


def _name_ok(name, where, what):
    if ":" in name or "/" in name or any(ord(c) < 33 for c in name):
        raise usage_error(where, f"invalid {what} name {show(name)}",
                          f"give a {what} name from the image or a number")


def parse_caps(items: "list[str]", where: str) -> "list[int]":
    """['NET_BIND_SERVICE', 'chown,cap_kill', 'all'] -> sorted capability numbers."""
    found: set = set()
    for item in items:
        for word in _clean(item, where, "capability").split(","):
            name = word.strip().upper()
            if name.startswith("CAP_"):
                name = name[4:]
            if name == "ALL":
                found.update(CAP_NUMBER.values())
            elif name in CAP_NUMBER:
                found.add(CAP_NUMBER[name])
            else:
                raise usage_error(where, f"unknown capability {show(word.strip())}", CAP_HELP)
    return sorted(found)


def parse_rlimit(spec: str, where: str = "--rlimit") -> "tuple[str, int, int, int | None]":
    """'nofile=1024:4096', 'core=unlimited', 'nproc=100' -> (name, resource, soft, hard|None)."""
    spec = _clean(spec, where, "limit")
    name, sep, value = spec.partition("=")
    name = name.strip().lower()
    if name.startswith("rlimit_"):
        name = name[7:]
    if not sep:
        raise usage_error(where, f"invalid limit {show(spec)}", RLIMIT_HELP)
    if name not in RLIMITS:
        raise usage_error(where, f"unknown limit {show(name)}", RLIMIT_HELP)
    soft_text, sep2, hard_text = value.partition(":")
    soft = _limit_value(soft_text, where, name)
    hard = _limit_value(hard_text, where, name) if sep2 else None
    if hard is not None and soft > hard:
        raise usage_error(where, f"limit {name}: soft {soft_text.strip()} is above hard "
                          f"{hard_text.strip()}", "make SOFT at most HARD")
    return name, RLIMITS[name], soft, hard


def _limit_value(text, where, name):
    text = text.strip()
    if text.lower() in ("unlimited", "infinity", "-1"):
        return RLIM_INFINITY
    value = _number(text, where, f"limit {name}", RLIM_INFINITY - 1)
    if value is None:
        raise usage_error(where, f"invalid value {show(text)} for limit {name}",
                          "use a whole number or 'unlimited'")
    return value


def parse_umask(text: str, where: str = "--umask") -> int:
    text = _clean(text, where, "umask")
    if not set(text) <= set("01234567") or len(text) > 4 or int(text, 8) > 0o777:
        raise usage_error(where, f"invalid umask {show(text)}", "write an octal mode like 022 or 027")
    return int(text, 8)


def parse_groups(items: "list[str]", where: str = "--groups") -> "list[str | int]":
    """['adm,audio', '100'] -> a list of names/ids (order kept, duplicates dropped)."""
    out = []
    for item in items:
        for word in _clean(item, where, "group").split(","):
            word = word.strip()
            if not word:
                continue
            g = _number(word, where, "gid", MAX_ID)
            if g is None:
                _name_ok(word, where, "group")
            value = word if g is None else g
            if value not in out:
                out.append(value)
    return out


# -- the image's account files (no NSS) ------------------------------------------------
class Accounts:
    """/etc/passwd and /etc/group of the image (under `root`), read once when first asked."""

    def __init__(self, root="/"):
        self.root = root
        self._passwd = None
        self._group = None

    def path(self, name: str) -> str:
        return os.path.join(self.root, "etc", name)

    def _read(self, name):
        try:
            with open(self.path(name), "rb") as f:
                data = f.read(16 << 20)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise ShimError("read", self.path(name), (err.strerror or str(err)).lower(),
                            "make it readable or give numeric ids") from None
        rows = []
        for line in data.decode("utf-8", "replace").splitlines():
            if not line or line[0] in "#+-":
                continue  # comments and NIS compat lines
            rows.append(line.split(":"))
        return rows

    def users(self) -> "list[list[str]]":
        if self._passwd is None:
            self._passwd = [r for r in self._read("passwd") if len(r) >= 7]
        return self._passwd

    def groups(self) -> "list[list[str]]":
        if self._group is None:
            self._group = [r for r in self._read("group") if len(r) >= 4]
        return self._group

    def user(self, key: "str | int") -> "tuple[str, int, int, str, str] | None":
        """(name, uid, gid, home, shell) for a name or uid, or None."""
        for r in self.users():
            if (r[0] == key if isinstance(key, str) else _int(r[2]) == key):
                uid, gid = _int(r[2]), _int(r[3])
                if uid is not None and gid is not None:
                    return r[0], uid, gid, r[5], r[6]
        return None

    def group(self, key: "str | int") -> "tuple[str, int] | None":
        """(name, gid) for a name or gid, or None."""
        for r in self.groups():
            if (r[0] == key if isinstance(key, str) else _int(r[2]) == key):
                gid = _int(r[2])
                if gid is not None:
                    return r[0], gid
        return None

    def memberships(self, name: str, primary: int) -> "list[int]":
        """The gids of every group that lists `name` as a member, primary first (initgroups)."""
        gids = [primary]
        for r in self.groups():
            gid = _int(r[2])
            if gid is not None and name in r[3].split(",") and gid not in gids:
                gids.append(gid)
        return gids


def _int(text):
    return int(text) if text and set(text) <= _DIGITS and len(text) <= 10 else None


# -- the decision ----------------------------------------------------------------------
class Identity:
    """What the delegate becomes.  Fields left None are shim's own."""

    def __init__(self, uid=None, gid=None, groups=None, user_name=None, home=None,
                 umask=None, no_new_privs=False, keep_caps=None, drop_caps=None, rlimits=(),
                 hooks_as_user=False, own=(), spec=None):
        self.uid, self.gid, self.groups = uid, gid, groups
        self.user_name, self.home = user_name, home
        self.umask, self.no_new_privs = umask, no_new_privs
        self.keep_caps, self.drop_caps = keep_caps, drop_caps
        self.rlimits = list(rlimits)  # (name, resource, soft, hard)
        self.hooks_as_user = hooks_as_user
        self.own = list(own)
        self.user_spec = spec  # as the user wrote it, for messages
        self.current_caps = None  # shim's permitted set (None: every capability)
        self.already = False  # a non-root shim already is that user: nothing to change

    @property
    def changes_user(self) -> bool:
        return self.uid is not None

    def owner(self) -> "tuple[int | None, int | None]":
        """(uid, gid) files written for the delegate get, or (None, None)."""
        return (self.uid, self.gid) if self.uid is not None else (None, None)

    def describe(self, step: str) -> str:
        if step == "uid":
            return f"{self.uid} ({self.user_spec})" if self.user_spec else str(self.uid)
        if step == "gid":
            return str(self.gid)
        return ",".join(str(g) for g in self.groups or ())

    def spec(self) -> "dict[str, Any] | None":
        """The dict build/static/shim_native.c's spawn takes (parse_identity)."""
        spec: dict = {}
        if self.uid is not None and not self.already:
            spec.update(uid=self.uid, gid=self.gid, groups=list(self.groups or ()))
        if self.umask is not None:
            spec["umask"] = self.umask
        if self.no_new_privs:
            spec["no_new_privs"] = True
        if self.rlimits:
            spec["rlimits"] = [(res, soft, RLIM_INFINITY if hard is None else hard)
                               for _, res, soft, hard in self._with_hard()]
        keep = self.kept_caps(self.current_caps)
        if keep is not None:
            mask = sum(1 << c for c in keep)
            spec["bounding_drop"] = [c for c in range(len(CAPABILITIES)) if c not in keep]
            non_root = self.uid not in (None, 0)
            # A non-root delegate without --cap-keep has no capabilities after setuid: only
            # the bounding set needs changing (a later setuid binary gains nothing dropped).
            if not non_root or self.keep_caps is not None:
                spec["caps"] = (mask, mask, mask)
            if non_root and keep and self.keep_caps is not None:
                spec["ambient"] = sorted(keep)
        return spec or None

    def kept_caps(self, current: "list[int] | None" = None) -> "list[int] | None":
        """The capability numbers the delegate keeps, or None for "unchanged"."""
        if self.keep_caps is None and not self.drop_caps:
            return None
        have = set(range(len(CAPABILITIES))) if current is None else set(current)
        keep = set(self.keep_caps) if self.keep_caps is not None else have
        return sorted((keep & have) - set(self.drop_caps or ()))

    def _with_hard(self):
        """Limits with HARD filled in: the current hard limit when only SOFT was given."""
        import resource

        out = []
        for name, res, soft, hard in self.rlimits:
            if hard is None:
                cur_hard = resource.getrlimit(res)[1]
                hard = RLIM_INFINITY if cur_hard == resource.RLIM_INFINITY else cur_hard
                hard = max(hard, soft)
            out.append((name, res, soft, hard))
        return out

    def can_execute(self, path: str) -> bool:
        """Whether the delegate's user may execute `path` (execvp's lookup, done as that user:
        a PATH entry only root can enter is skipped as execvp would)."""
        import stat

        if self.uid in (None, 0):
            return os.access(path, os.X_OK)
        try:
            real = os.path.realpath(path)
            parent = os.path.dirname(real)
            while True:
                if not self._allowed(os.stat(parent), 0o1):
                    return False
                if parent == "/":
                    break
                parent = os.path.dirname(parent)
            st = os.stat(real)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and self._allowed(st, 0o1)

    def _allowed(self, st, bit):
        if st.st_uid == self.uid:
            return bool(st.st_mode >> 6 & bit)
        if st.st_gid == self.gid or st.st_gid in (self.groups or ()):
            return bool(st.st_mode >> 3 & bit)
        return bool(st.st_mode & bit)

    def environment(self, env: "dict[str, str]", set_by_config: "set[str] | frozenset[str]") -> None:
        """HOME/USER/LOGNAME of the target user, as gosu does: HOME unless configuration set
        it; USER/LOGNAME where the image had them (for root)."""
        if self.uid is None:
            return
        if "HOME" not in set_by_config:
            env["HOME"] = self.home or "/"
        for name in ("USER", "LOGNAME"):
            if name in env and name not in set_by_config and self.user_name:
                env[name] = self.user_name


def resolve(settings: "Any",  # the config's IdentitySettings (a layer above)
            accounts: "Accounts | None" = None, euid: "int | None" = None,
            current_caps: "list[int] | None" = None) -> "Identity | None":
    """The Identity of `settings` (the config's `identity` section), or None when it asks
    for nothing.  Raises a usage ShimError for anything wrong, before anything runs."""
    s = settings
    if not (s.user or s.groups or s.own or s.umask or s.no_new_privileges or s.cap_keep or
            s.cap_drop or s.rlimit):
        return None
    accounts = accounts or Accounts()
    euid = os.geteuid() if euid is None else euid
    ident = Identity(umask=parse_umask(s.umask) if s.umask else None,
                     no_new_privs=bool(s.no_new_privileges),
                     keep_caps=parse_caps(s.cap_keep, "--cap-keep") if s.cap_keep else None,
                     drop_caps=parse_caps(s.cap_drop, "--cap-drop") if s.cap_drop else None,
                     rlimits=_limits(s.rlimit), hooks_as_user=bool(s.hooks_as_user),
                     own=list(s.own), spec=s.user)
    if s.user:
        _user(ident, s.user, accounts)
    elif s.groups:
        raise usage_error("--groups", "supplementary groups without --user",
                          "add --user USER (the groups are the delegate's, with its user)")
    if s.groups and ident.uid is not None:
        ident.groups = [_gid(g, accounts, "--groups") for g in parse_groups(s.groups)]
    if s.own and ident.uid is None:
        raise usage_error("--own", "whose? no --user given", "add --user USER[:GROUP]")
    _check_allowed(ident, euid, current_caps)
    ident.current_caps = current_caps
    return ident


def _limits(items):
    seen = {}
    for item in items:
        for part in _split_limits(item):
            name, res, soft, hard = parse_rlimit(part)
            seen[name] = (name, res, soft, hard)  # the last one wins, as for every option
    return list(seen.values())


def _split_limits(item):
    # `--rlimit nofile=1024,nproc=64` and SHIM_RLIMIT's comma list read the same.
    return [p for p in (x.strip() for x in str(item).split(",")) if p] or [item]


def _user(ident, spec, accounts):
    user, group = parse_user(spec)
    entry = accounts.user(user)
    if entry is None and isinstance(user, str):
        raise usage_error("--user", f"no user {show(user)} in {accounts.path('passwd')}",
                          "add the user to the image or give a numeric uid (USER:GROUP ids)")
    if entry is not None:
        name, uid, primary, home, _ = entry
    else:
        name, uid, primary, home = None, user, None, None
    gid = _gid(group, accounts, "--user") if group is not None else primary
    if gid is None:
        gid = uid  # a numeric user with no passwd entry and no group: its own number, as Docker
    ident.uid, ident.gid, ident.user_name, ident.home = uid, gid, name, home
    # Supplementary groups: the user's memberships in /etc/group (initgroups) with the
    # primary group first; only GROUP for a user with no entry.
    ident.groups = accounts.memberships(name, gid) if name else [gid]


def _gid(group, accounts, where):
    if isinstance(group, int):
        return group
    entry = accounts.group(group)
    if entry is None:
        raise usage_error(where, f"no group {show(group)} in {accounts.path('group')}",
                          "add the group to the image or give a numeric gid")
    return entry[1]


def _check_allowed(ident, euid, current_caps):
    """A non-root shim can become nobody else and cannot raise a hard limit; nobody can
    keep a capability shim does not hold (a container started without it)."""
    if ident.keep_caps and current_caps is not None and set(ident.keep_caps) - set(current_caps):
        missing = sorted(set(ident.keep_caps) - set(current_caps))
        raise usage_error("--cap-keep", "shim does not hold " +
                          ", ".join(CAPABILITIES[c] for c in missing),
                          "grant it to the container (--cap-add, securityContext.capabilities."
                          "add) or drop it from --cap-keep")
    setpcap = CAP_NUMBER["SETPCAP"]
    if (ident.keep_caps is not None or ident.drop_caps) and current_caps is not None and \
            setpcap not in current_caps:
        raise usage_error("--cap-keep" if ident.keep_caps is not None else "--cap-drop",
                          "shim cannot change the bounding set without CAP_SETPCAP",
                          "run shim as root with CAP_SETPCAP, or use --no-new-privileges "
                          "(setuid binaries and file capabilities then grant nothing)")
    if euid == 0:
        return
    if ident.uid is not None and ident.uid == euid and ident.gid == os.getegid():
        ident.already = True  # "running already as the requested user is not an error"
    elif ident.uid is not None:
        raise usage_error("--user", f"shim runs as uid {euid}, not root: it cannot become "
                          f"{ident.user_spec}",
                          "start the container as root (shim drops to the user) or drop --user")
    import resource

    for name, res, soft, hard in ident.rlimits:
        cur_hard = resource.getrlimit(res)[1]
        limit = RLIM_INFINITY if cur_hard == resource.RLIM_INFINITY else cur_hard
        if max(soft, hard or 0) > limit:
            raise usage_error("--rlimit", f"limit {name} above the hard limit {cur_hard} of "
                              "a non-root shim", "lower it, or run shim as root")


def current_capabilities(status_path: str = "/proc/self/status") -> "list[int] | None":
    """The numbers in this process's permitted set, or None when /proc is not there."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapPrm:"):
                    mask = int(line.split()[1], 16)
                    return [c for c in range(64) if mask >> c & 1]
    except (OSError, ValueError):
        return None
    return None


# -- --own: chown a tree, as `find PATH ! -user U -exec chown U:G` -----------------------
def own(paths: "list[str]", uid: int, gid: int) -> int:
    """Give each path and everything under it not already uid:gid to uid:gid.

    Never follows a symlink (lchown on the link itself) and never crosses into another
    mount (a different st_dev).  Returns the number of entries changed.  A path that does
    not exist is a usage error, raised before anything changed.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise usage_error("--own", f"no such file or directory {show(path)}",
                              "create it first (a volume mount, mkdir in the image) or drop --own")
    changed = 0
    for path in paths:
        changed += _own_tree(path, uid, gid)
    return changed


def _own_tree(top, uid, gid):
    import stat

    changed = 0
    st = os.lstat(top)
    device = st.st_dev
    changed += _chown(top, st, uid, gid)
    if not stat.S_ISDIR(st.st_mode):
        return changed
    todo = [top]
    while todo:
        directory = todo.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as err:
            raise _own_error(directory, err) from None
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile
            if est.st_dev != device:
                continue  # a mount point inside the tree: another filesystem, not ours
            changed += _chown(entry.path, est, uid, gid)
            if stat.S_ISDIR(est.st_mode):
                todo.append(entry.path)
    return changed


def _chown(path, st, uid, gid) -> int:
    if st.st_uid == uid and st.st_gid == gid:
        return 0
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    except OSError as err:
        raise _own_error(path, err) from None
    return 1


def _own_error(path, err):
    from shim.errors import REASON_SETUP

    return ShimError("own", show(path), (err.strerror or str(err)).lower(),
                     "run shim as root, or make the path writable (a read-only mount cannot "
                     "change owner)", reason=REASON_SETUP)
