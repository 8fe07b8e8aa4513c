"""Identity (issue 18), the pure parts: USER[:GROUP], capabilities, limits, umask, the
image's account files, and the decision (Identity and its spec for the C spawn)."""

import os

import pytest
from hypothesis import example, given, settings, strategies as st

from shim.config import options
from shim.errors import REASON_CODES, REASON_USAGE, ShimError
from shim.proc import identity as ident
from shim.proc.identity import Accounts

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))  # `scripts/test explore` raises it
USAGE = REASON_CODES[REASON_USAGE]

PASSWD = """root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:4321:4000:App:/home/app:/bin/sh
nohome:x:5000:5000::/:/bin/false
broken:x:notanumber:1::/:/bin/sh
"""
GROUP = """root:x:0:
appgrp:x:4000:
audio:x:29:app,other
video:x:44:other,app
staff:x:50:
nohome:x:5000:
"""


@pytest.fixture
def image(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return Accounts(str(tmp_path))


def settings_of(*argv):
    return options.resolve(list(argv) + ["--", "true"], {}).identity


def resolve(image, *argv, euid=0, caps=None):
    return ident.resolve(settings_of(*argv), image, euid=euid, current_caps=caps)


# -- parsers --------------------------------------------------------------------------
@pytest.mark.parametrize("spec,want", [
    ("app", ("app", None)), ("app:staff", ("app", "staff")), ("4321", (4321, None)),
    ("4321:4321", (4321, 4321)), (" 0:0 ", (0, 0)), ("app:50", ("app", 50)),
    ("4294967294", (4294967294, None)),
])
def test_parse_user(spec, want):
    assert ident.parse_user(spec) == want


@pytest.mark.parametrize("spec,cause", [
    ("", "empty user"), (":g", "invalid user"), ("u:", "invalid user"), ("a\x00b", "NUL"),
    ("4294967295", "out of range"), ("99999999999999999999999", "out of range"),
    ("a/b", "invalid user name"), ("u:g:h", "invalid group name"), ("a b", "invalid user name"),
])
def test_parse_user_refuses(spec, cause):
    with pytest.raises(ShimError) as info:
        ident.parse_user(spec)
    assert cause in info.value.message() and info.value.code == USAGE


def test_non_ascii_digits_are_names_not_numbers():
    # int("١٢٣") is 123 in Python: a uid must be ASCII digits, else it is a (bad) name.
    assert ident.parse_user("١٢٣") == ("١٢٣", None)


@pytest.mark.parametrize("items,want", [
    (["NET_BIND_SERVICE"], [10]), (["cap_chown,kill"], [0, 5]), (["CAP_SYS_ADMIN", "chown"], [0, 21]),
    (["all"], list(range(len(ident.CAPABILITIES)))),
])
def test_parse_caps(items, want):
    assert ident.parse_caps(items, "--cap-keep") == want


@pytest.mark.parametrize("bad", ["NET_BIND", "", "CAP_", "10", "chown\x00", "ＣＨＯＷＮ"])
def test_parse_caps_refuses(bad):
    with pytest.raises(ShimError) as info:
        ident.parse_caps([bad], "--cap-keep")
    assert info.value.code == USAGE and "\n" not in info.value.message()


@pytest.mark.parametrize("spec,want", [
    ("nofile=1024", ("nofile", 7, 1024, None)), ("nofile=1024:4096", ("nofile", 7, 1024, 4096)),
    ("core=unlimited", ("core", 4, ident.RLIM_INFINITY, None)),
    ("NPROC=10:unlimited", ("nproc", 6, 10, ident.RLIM_INFINITY)),
    ("RLIMIT_AS=0:0", ("as", 9, 0, 0)), ("memlock=-1", ("memlock", 8, ident.RLIM_INFINITY, None)),
])
def test_parse_rlimit(spec, want):
    assert ident.parse_rlimit(spec) == want


@pytest.mark.parametrize("spec,cause", [
    ("nofile", "invalid limit"), ("files=1", "unknown limit"), ("nofile=x", "invalid value"),
    ("nofile=10:5", "above hard"), ("nofile=١٠", "invalid value"), ("nofile=1\x00", "NUL"),
    ("nofile=" + "9" * 30, "out of range"), ("nofile=18446744073709551615", "out of range"),
    ("nofile=-2", "invalid value"), ("nofile=1.5", "invalid value"),
])
def test_parse_rlimit_refuses(spec, cause):
    with pytest.raises(ShimError) as info:
        ident.parse_rlimit(spec)
    assert cause in info.value.message() and info.value.code == USAGE


@pytest.mark.parametrize("text,want", [("027", 0o27), ("0", 0), ("0777", 0o777), ("22", 0o22)])
def test_parse_umask(text, want):
    assert ident.parse_umask(text) == want


@pytest.mark.parametrize("bad", ["8", "01000", "u=rwx", "-1", "٠٢٢", "02 2"])
def test_parse_umask_refuses(bad):
    with pytest.raises(ShimError):
        ident.parse_umask(bad)


# -- hostile input: one usage error, never anything else --------------------------------
_hostile = st.text(st.sampled_from(list("0123456789:=,aZ_-/ \x00\n") + ["١", "٢", "é", "ｑ"]),
                   max_size=30)


@example("4294967295")
@example("0:" + "9" * 40)
@example("\x00")
@settings(max_examples=300 * SCALE, deadline=None)
@given(_hostile)
def test_user_parser_never_crashes(text):
    try:
        user, group = ident.parse_user(text)
    except ShimError as err:
        assert err.code == USAGE and "\n" not in err.message()
        return
    for part in (user, group):
        assert part is None or isinstance(part, str) or 0 <= part <= ident.MAX_ID


@example("nofile=١")
@example("as=99999999999999999999999:1")
@settings(max_examples=300 * SCALE, deadline=None)
@given(st.sampled_from(["nofile=", "core=", "x=", "stack=", ""]).flatmap(
    lambda p: _hostile.map(lambda t: p + t)))
def test_rlimit_parser_never_crashes(text):
    try:
        _, res, soft, hard = ident.parse_rlimit(text)
    except ShimError as err:
        assert err.code == USAGE and "\n" not in err.message()
        return
    assert 0 <= soft <= ident.RLIM_INFINITY and (hard is None or soft <= hard)


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.lists(_hostile, max_size=3))
def test_caps_parser_never_crashes(items):
    try:
        caps = ident.parse_caps(items, "--cap-drop")
    except ShimError as err:
        assert err.code == USAGE and "\n" not in err.message()
        return
    assert all(0 <= c < 64 for c in caps)


# -- the image's accounts ------------------------------------------------------------------
def test_named_user_primary_and_supplementary_groups(image):
    i = resolve(image, "--user", "app")
    assert (i.uid, i.gid, i.groups, i.home, i.user_name) == (4321, 4000, [4000, 29, 44],
                                                            "/home/app", "app")


def test_user_with_group_name_and_explicit_groups(image):
    i = resolve(image, "--user", "app:staff", "--groups", "audio,7")
    assert (i.uid, i.gid, i.groups) == (4321, 50, [29, 7])


def test_numeric_user_without_an_entry(image):
    i = resolve(image, "--user", "777")
    assert (i.uid, i.gid, i.groups, i.home) == (777, 777, [777], None)
    i = resolve(image, "--user", "777:12")
    assert (i.uid, i.gid, i.groups) == (777, 12, [12])


def test_numeric_user_with_an_entry_gets_its_groups(image):
    i = resolve(image, "--user", "4321")
    assert (i.gid, i.groups, i.user_name) == (4000, [4000, 29, 44], "app")


def test_no_passwd_at_all_numbers_still_work(tmp_path):
    i = ident.resolve(settings_of("--user", "65532:65532"), Accounts(str(tmp_path)), euid=0)
    assert (i.uid, i.gid, i.groups) == (65532, 65532, [65532])


@pytest.mark.parametrize("argv,cause", [
    (["--user", "nobody-here"], "no user \"nobody-here\" in "),
    (["--user", "app:nogroup"], "no group \"nogroup\" in "),
    (["--user", "app", "--groups", "nogroup"], "no group"),
    (["--groups", "audio"], "without --user"),
    (["--own", "/x"], "no --user"),
    (["--cap-keep", "BOGUS"], "unknown capability"),
    (["--rlimit", "bogus=1"], "unknown limit"),
    (["--umask", "9"], "invalid umask"),
])
def test_bad_input_is_one_usage_line_naming_the_file(image, argv, cause):
    with pytest.raises(ShimError) as info:
        resolve(image, *argv)
    message = info.value.message()
    assert cause in message and info.value.code == USAGE and "\n" not in message
    if "no user" in cause:
        assert image.path("passwd") in message
    if "no group \"" in cause:
        assert image.path("group") in message


def test_a_non_root_shim_cannot_become_another_user(image):
    with pytest.raises(ShimError) as info:
        resolve(image, "--user", "app", euid=1000)
    assert "not root" in info.value.message() and info.value.code == USAGE


def test_running_already_as_the_requested_user_is_fine(image):
    me = os.geteuid(), os.getegid()
    i = resolve(image, "--user", f"{me[0]}:{me[1]}", euid=me[0])
    assert (i.uid, i.gid) == me


def test_a_non_root_shim_cannot_raise_a_hard_limit(image):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.fail("this test needs a finite nofile hard limit (the machine's is unlimited)")
    with pytest.raises(ShimError) as info:
        resolve(image, "--rlimit", f"nofile={hard + 1}", euid=1000)
    assert "above the hard limit" in info.value.message()
    resolve(image, "--rlimit", f"nofile={hard}", euid=1000)  # at the limit: fine


# -- the spec the C spawn gets ---------------------------------------------------------------
def test_spec_for_a_user_keeping_one_capability(image):
    i = resolve(image, "--user", "app", "--cap-keep", "NET_BIND_SERVICE", caps=list(range(41)))
    spec = i.spec()
    assert spec["uid"] == 4321 and spec["gid"] == 4000 and spec["groups"] == [4000, 29, 44]
    assert spec["ambient"] == [10] and spec["caps"] == (1 << 10,) * 3
    assert 10 not in spec["bounding_drop"] and len(spec["bounding_drop"]) == 40


def test_spec_for_root_dropping_capabilities(image):
    i = resolve(image, "--cap-drop", "net_raw,sys_admin", caps=list(range(41)))
    spec = i.spec()
    assert "uid" not in spec and "ambient" not in spec
    assert sorted(spec["bounding_drop"]) == [13, 21]
    keep = sum(1 << c for c in range(41)) & ~(1 << 13 | 1 << 21)
    assert spec["caps"] == (keep, keep, keep)


def test_spec_for_a_user_without_cap_keep_touches_only_the_bounding_set(image):
    spec = resolve(image, "--user", "app", "--cap-drop", "all", caps=list(range(41))).spec()
    assert "caps" not in spec and "ambient" not in spec and len(spec["bounding_drop"]) == 41


def test_spec_limits_umask_nnp(image):
    spec = resolve(image, "--rlimit", "nofile=100:200", "--rlimit", "core=0", "--umask", "027",
                   "--no-new-privileges").spec()
    assert spec["umask"] == 0o27 and spec["no_new_privs"] is True
    assert (7, 100, 200) in spec["rlimits"]
    assert [r for r in spec["rlimits"] if r[0] == 4][0][1] == 0


def test_nothing_asked_is_none(image):
    assert resolve(image) is None


def test_environment_follows_gosu(image):
    i = resolve(image, "--user", "app")
    env = {"HOME": "/root", "USER": "root", "PATH": "/bin"}
    i.environment(env, set())
    assert env == {"HOME": "/home/app", "USER": "app", "PATH": "/bin"}
    env = {"HOME": "/custom"}
    i.environment(env, {"HOME"})  # set by configuration: kept
    assert env == {"HOME": "/custom"}  # and no USER/LOGNAME where the image had none
    n = resolve(image, "--user", "777")
    env = {"HOME": "/root", "LOGNAME": "root"}
    n.environment(env, set())
    assert env == {"HOME": "/", "LOGNAME": "root"}  # no entry: HOME=/, no name to set


def test_config_keys_and_variables_reach_the_same_settings():
    doc_opts = options.resolve(["--", "true"], {"SHIM_USER": "app:staff", "SHIM_RLIMIT":
                                                "nofile=10,core=0", "SHIM_CAP_KEEP": "CHOWN,KILL",
                                                "SHIM_NO_NEW_PRIVILEGES": "true"}).identity
    assert doc_opts.user == "app:staff" and doc_opts.rlimit == ["nofile=10", "core=0"]
    assert doc_opts.cap_keep == ["CHOWN", "KILL"] and doc_opts.no_new_privileges is True
    conf = options.parse_config({"identity": {"user": "app", "own": ["/data"], "umask": "027",
                                              "hooks_as_user": True}})
    assert conf["user"] == "app" and conf["own"] == ["/data"] and conf["hooks_as_user"] is True


def test_keeping_a_capability_shim_does_not_hold_is_refused(image):
    with pytest.raises(ShimError) as info:
        resolve(image, "--user", "app", "--cap-keep", "NET_ADMIN,CHOWN", caps=[0, 8, 10])
    assert "does not hold NET_ADMIN" in info.value.message() and info.value.code == USAGE
    assert resolve(image, "--user", "app", "--cap-keep", "CHOWN", caps=[0, 8, 10]).spec()["ambient"] == [0]


def test_capabilities_without_setpcap_are_refused_before_anything_runs(image):
    with pytest.raises(ShimError) as info:
        resolve(image, "--cap-drop", "all", euid=1000, caps=[])
    assert "CAP_SETPCAP" in info.value.message() and "--no-new-privileges" in info.value.message()
