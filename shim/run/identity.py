"""The identity step of a run: resolve `--user` and friends once, before anything runs,
and hand the result to the places that need it (the delegate's spawn or exec, its
environment, the owner of files written for it, `--own`).

The decision itself is shim/proc/identity.py; the calls between fork and exec are in C.
"""

import os

from shim.errors import ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

    from shim.config.options import Config, IdentitySettings
    from shim.proc.identity import Identity


def prepare(config: "Config", log: "Callable[[str, str], object]") -> "Identity | None":
    """The run's Identity (or None); bad input raises a usage error before anything runs."""
    settings = config.identity
    if not asked(settings):
        return None  # `shim -- true` imports nothing more
    from shim.proc import identity as ident_mod

    ident = ident_mod.resolve(settings, current_caps=ident_mod.current_capabilities())
    if ident is not None and ident.changes_user:
        from shim.sources import targets

        # Secret files and dirs, SageMaker's files: owned by the delegate's user.
        targets.set_default_owner(ident.uid, ident.gid)
        log("debug", f"delegate runs as uid {ident.uid} gid {ident.gid} groups "
                     f"{','.join(str(g) for g in ident.groups or ())}")
    return ident


def asked(s: "IdentitySettings") -> bool:
    """Whether the identity section asks for anything (cheap: no imports)."""
    return bool(s.user or s.groups or s.own or s.umask or s.no_new_privileges or s.cap_keep or
                s.cap_drop or s.rlimit)


def environment(ident: "Identity | None", env: "dict[str, str]", config: "Config") -> None:
    """HOME/USER/LOGNAME of the target user (gosu's rule), unless configuration set them."""
    if ident is None:
        return
    configured = set(config.env.set) | set(config.env.default)
    ident.environment(env, configured)


def own(ident: "Identity | None", log: "Callable[[str, str], object]") -> int:
    """--own: give each path's tree to the delegate's user; says how many entries changed."""
    if ident is None or not ident.own:
        return 0
    from shim.proc import identity as ident_mod

    changed = ident_mod.own(ident.own, ident.uid, ident.gid)
    log("info", f"own: {changed} entries given to {ident.uid}:{ident.gid} under "
                f"{', '.join(ident.own)}")
    return changed


def give_outputs(ident: "Identity | None", paths: "tuple[str | None, ...] | list[str]") -> None:
    """Files shim writes for the delegate itself (tee files): owned by its user too."""
    if ident is None or not ident.changes_user:
        return
    for path in paths:
        if not path:
            continue
        try:
            st = os.lstat(path)
            if (st.st_uid, st.st_gid) != (ident.uid, ident.gid):
                os.chown(path, ident.uid, ident.gid, follow_symlinks=False)
        except OSError:
            pass  # not created (yet), or a filesystem without owners: nothing to give


def can_exec(ident: "Identity | None") -> "Callable[[str], bool] | None":
    """The PATH lookup's access check for the delegate (None: shim's own os.access)."""
    return ident.can_execute if ident is not None and ident.changes_user else None


def for_hooks(ident: "Identity | None", config: "Config") -> "Identity | None":
    """Hooks run as shim unless --hooks-as-user."""
    return ident if ident is not None and config.identity.hooks_as_user else None


def become(ident: "Identity | None") -> None:
    """Exec mode: take on the identity in this process, right before execve."""
    if ident is None:
        return
    from shim.proc import native
    from shim.proc.spawn import setup_error

    try:
        native.become(ident.spec())
    except OSError as err:
        step = err.filename if isinstance(err.filename, str) else "setup"
        raise setup_error(step, err.errno, "delegate", None, ident) from None


def effective_for(environ: "Mapping[str, str]", runtime: "str | None" = None) -> "dict[str, Any] | None":
    """`shim detect`: the identity the configuration (file and SHIM_* variables, with the
    profile of the decided runtime) gives the delegate; None when it asks for none or the
    configuration does not resolve (`shim check` reports that)."""
    from shim.config import options

    if runtime is not None:
        environ = dict(environ, SHIM_RUNTIME=runtime)
    try:
        config = options.resolve(["--", "true"], environ)
    except (ShimError, options.HelpRequested):
        return None
    if not asked(config.identity):
        return None
    return show_effective(config)


def show_effective(config: "Config", euid: "int | None" = None) -> "dict[str, Any]":
    """The effective identity as a dict for `shim detect`/`shim check` (never raises)."""
    from shim.proc import identity as ident_mod

    try:
        ident = ident_mod.resolve(config.identity, current_caps=ident_mod.current_capabilities(),
                                  euid=euid)
    except ShimError as err:  # check and detect report it; they do not fail here
        return {"error": err.message()}
    if ident is None:
        return {"user": "unchanged (shim's own)", "uid": os.geteuid(), "gid": os.getegid()}
    out = {"uid": ident.uid, "gid": ident.gid, "groups": ident.groups, "user": ident.user_name,
           "home": ident.home}
    if ident.uid is None:
        out.update(uid=os.geteuid(), gid=os.getegid(), user="unchanged (shim's own)")
    if ident.umask is not None:
        out["umask"] = f"{ident.umask:04o}"
    if ident.no_new_privs:
        out["no_new_privileges"] = True
    kept = ident.kept_caps(ident.current_caps)
    if kept is not None:
        out["capabilities"] = [ident_mod.CAPABILITIES[c] for c in kept]
    if ident.rlimits:
        out["rlimits"] = {name: [_lim(soft), _lim(hard)] for name, _, soft, hard in ident.rlimits}
    if ident.own:
        out["own"] = ident.own
    return out


def _lim(value):
    from shim.proc.identity import RLIM_INFINITY

    return "unlimited" if value == RLIM_INFINITY else value
