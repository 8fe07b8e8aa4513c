"""Section `identity`: who the delegate runs as (user, groups, capabilities, limits)."""

from shim.config.option import BOOL, LIST, STR, Option

SECTION = "identity"

OPTIONS = (
    Option("user", ["--user"], "identity.user", STR, None,
           "run the delegate as USER[:GROUP] (names from the image's /etc/passwd and "
           "/etc/group, or numbers); shim itself stays as it is", metavar="USER[:GROUP]"),
    Option("groups", ["--groups"], "identity.groups", LIST, [],
           "the delegate's supplementary groups (names or numbers, comma-separated; default: "
           "the user's groups in /etc/group); with --user", metavar="G,..."),
    Option("own", ["--own"], "identity.own", LIST, [],
           "before the delegate starts, give PATH and everything under it to the --user "
           "(no symlink followed, no mount crossed); repeatable", metavar="PATH"),
    Option("umask", ["--umask"], "identity.umask", STR, None,
           "the delegate's umask, octal (e.g. 027)", metavar="MODE"),
    Option("no_new_privileges", ["--no-new-privileges"], "identity.no_new_privileges", BOOL,
           False, "set no_new_privs for the delegate: setuid binaries and file capabilities "
           "grant nothing"),
    Option("cap_keep", ["--cap-keep"], "identity.cap_keep", LIST, [],
           "keep only these capabilities (ambient for a --user delegate, e.g. NET_BIND_SERVICE); "
           "every other one leaves the bounding set", metavar="CAP,..."),
    Option("cap_drop", ["--cap-drop"], "identity.cap_drop", LIST, [],
           "drop these capabilities (or all) from the delegate, bounding set included",
           metavar="CAP,..."),
    Option("rlimit", ["--rlimit"], "identity.rlimit", LIST, [],
           "the delegate's resource limit NAME=SOFT[:HARD] (nofile, nproc, core, memlock, "
           "stack, as...; 'unlimited'); repeatable", metavar="NAME=SOFT[:HARD]"),
    Option("hooks_as_user", ["--hooks-as-user"], "identity.hooks_as_user", BOOL, False,
           "run pre- and post-hooks with the delegate's identity too (default: as shim)"),
)
