"""File and Secret-volume writers on real files in a temp dir (fast, no sleeping).

The directory shape is checked against what the kubelet's AtomicWriter
(kubernetes pkg/volume/util/atomic_writer.go) produces: `key -> ..data/key`,
`..data -> ..YYYY_MM_DD_HH_MM_SS.<digits>`, generation dir 0755, no `..data_tmp`
left behind, the old generation removed.
"""

import os
import re
import stat
import threading

import pytest

from shim.errors import ShimError
from shim.sources import targets

GENERATION = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$")


def shape(directory):
    """{name: link target or 'dir'/'file'} of the top level of `directory`."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.islink(path):
            out[name] = os.readlink(path)
        else:
            out[name] = "dir" if os.path.isdir(path) else "file"
    return out


def test_write_file_atomic_mode_and_parents(tmp_path):
    target = tmp_path / "a" / "b" / "secret"
    targets.write_file(str(target), b"s3cr3t")
    assert target.read_bytes() == b"s3cr3t"
    assert stat.S_IMODE(target.stat().st_mode) == 0o400
    targets.write_file(str(target), b"next", mode=0o440)
    assert target.read_bytes() == b"next"
    assert stat.S_IMODE(target.stat().st_mode) == 0o440
    assert os.listdir(target.parent) == ["secret"]  # no temp file left


def test_write_file_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing the owner needs root")  # the process tier covers non-root
    target = tmp_path / "owned"
    targets.write_file(str(target), b"x", uid=65534, gid=65533)
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (65534, 65533)


def test_write_file_failure_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ShimError) as caught:
        targets.write_file(str(blocker / "sub" / "x"), b"v")
    assert "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_write_file_failure_removes_created_parents(tmp_path, monkeypatch):
    def broken_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(targets.os, "rename", broken_rename)
    with pytest.raises(ShimError) as caught:
        targets.write_file(str(tmp_path / "new" / "deeper" / "x"), b"v")
    assert "no space left on device" in caught.value.message()
    assert "free space" in caught.value.fix
    assert os.listdir(tmp_path) == []


def test_write_dir_kubelet_shape(tmp_path):
    d = tmp_path / "secret"
    assert targets.write_dir(str(d), {"username": b"admin", "password": b"pw"}) is True
    top = shape(d)
    generation = top.pop("..data")
    assert GENERATION.match(generation), generation
    assert top == {generation: "dir", "password": "..data/password", "username": "..data/username"}
    assert stat.S_IMODE(os.stat(d / generation).st_mode) == 0o755
    assert sorted(os.listdir(d / generation)) == ["password", "username"]
    assert (d / "password").read_bytes() == b"pw"
    assert stat.S_IMODE(os.stat(d / "password").st_mode) == 0o400
    # The timestamp is UTC, like the kubelet's time.Now().UTC().
    import time
    assert generation[2:12] == time.strftime("%Y_%m_%d", time.gmtime())


def test_write_dir_unchanged_is_no_swap(tmp_path):
    d = str(tmp_path / "s")
    targets.write_dir(d, {"k": b"v"})
    before = os.readlink(os.path.join(d, "..data"))
    os.unlink(os.path.join(d, "k"))  # a missing link is repaired, as the kubelet does
    assert targets.write_dir(d, {"k": b"v"}) is False
    assert os.readlink(os.path.join(d, "..data")) == before
    assert os.readlink(os.path.join(d, "k")) == "..data/k"


def test_write_dir_mode_change_swaps(tmp_path):
    d = str(tmp_path / "s")
    targets.write_dir(d, {"k": b"v"})
    assert targets.write_dir(d, {"k": b"v"}, mode=0o440) is True
    assert stat.S_IMODE(os.stat(os.path.join(d, "k")).st_mode) == 0o440


def test_write_dir_update_removes_stale_and_old_generation(tmp_path):
    d = tmp_path / "s"
    targets.write_dir(str(d), {"a": b"1", "b": b"2"})
    first = os.readlink(d / "..data")
    assert targets.write_dir(str(d), {"b": b"3", "c": b"4"}) is True
    top = shape(d)
    second = top.pop("..data")
    assert second != first
    assert top == {second: "dir", "b": "..data/b", "c": "..data/c"}
    assert (d / "b").read_bytes() == b"3"
    assert not os.path.lexists(d / "a")


def test_write_dir_cleans_crash_leftovers(tmp_path):
    d = tmp_path / "s"
    targets.write_dir(str(d), {"a": b"1"})
    os.mkdir(d / "..2001_01_01_00_00_00.42")  # a generation a crashed writer left
    os.symlink("nowhere", d / "..data_tmp")
    targets.write_dir(str(d), {"a": b"2"})
    assert [n for n in os.listdir(d) if n.startswith("..2001")] == []
    assert not os.path.lexists(d / "..data_tmp")
    assert (d / "a").read_bytes() == b"2"


def test_write_dir_refuses_to_shadow_user_files(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    (d / "password").write_bytes(b"mine")
    with pytest.raises(ShimError) as caught:
        targets.write_dir(str(d), {"password": b"theirs"})
    assert "password exists and is not a link into ..data" in caught.value.message()
    assert sorted(os.listdir(d)) == ["password"]
    assert (d / "password").read_bytes() == b"mine"


@pytest.mark.parametrize("key", ["", ".", "..", "..x", "a/b", "x" * 256, "nul\0"])
def test_write_dir_rejects_bad_keys(tmp_path, key):
    with pytest.raises(ShimError):
        targets.write_dir(str(tmp_path / "s"), {"ok": b"1", key: b"2"})
    assert not (tmp_path / "s").exists()  # validated before anything is created


def test_write_dir_failure_mid_write_publishes_nothing(tmp_path, monkeypatch):
    d = tmp_path / "s"
    targets.write_dir(str(d), {"a": b"1"})
    before = shape(d)
    real = targets._write_new
    calls = []

    def flaky(path, data, mode, uid, gid):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(30, "Read-only file system")
        real(path, data, mode, uid, gid)

    monkeypatch.setattr(targets, "_write_new", flaky)
    with pytest.raises(ShimError) as caught:
        targets.write_dir(str(d), {"a": b"2", "b": b"3"})
    assert "read-only file system" in caught.value.message()
    assert "mount a writable volume" in caught.value.fix
    assert shape(d) == before
    assert (d / "a").read_bytes() == b"1"


def test_reader_sees_only_whole_generations(tmp_path):
    """A reader that follows ..data (as kubelet consumers do) never mixes generations."""
    d = str(tmp_path / "s")
    keys = [f"k{i}" for i in range(8)]
    targets.write_dir(d, {k: b"0" for k in keys})
    stop = threading.Event()
    seen, mixed = set(), []

    def reader():
        while not stop.is_set():
            try:
                generation = os.readlink(os.path.join(d, "..data"))
                values = set()
                for k in keys:
                    with open(os.path.join(d, generation, k), "rb") as f:
                        values.add(f.read())
            except FileNotFoundError:
                continue  # the generation was removed under us: re-read ..data, as inotify users do
            if len(values) != 1:
                mixed.append(values)
            seen.update(values)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 30):
            targets.write_dir(d, {k: str(n).encode() for k in keys})
    finally:
        stop.set()
        thread.join()
    assert mixed == []
    assert len(seen) > 1


def test_reader_through_visible_links_sees_each_file_whole(tmp_path):
    d = str(tmp_path / "s")
    big = [b"a" * 200_000, b"b" * 300_000]
    targets.write_dir(d, {"blob": big[0]})
    stop, bad = threading.Event(), []

    def reader():
        while not stop.is_set():
            try:
                with open(os.path.join(d, "blob"), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if data not in big:
                bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(40):
            targets.write_dir(d, {"blob": big[n % 2 == 0]})
    finally:
        stop.set()
        thread.join()
    assert bad == []


def test_memory_backed(tmp_path):
    assert targets.memory_backed("/dev/shm") is True or not os.path.isdir("/dev/shm")
    assert targets.memory_backed("/dev/shm/not/yet/there") == targets.memory_backed("/dev/shm")
    assert targets.memory_backed("/proc") is False


def test_mountinfo_parsing(monkeypatch, tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "30 22 0:26 / /run/secrets\\040app rw - tmpfs tmpfs rw\n"
        "31 22 0:27 / /var rw - ext4 /dev/sdb rw\n"
        "32 31 0:28 / /var/ram rw shared:5 master:1 - ramfs none rw\n"
    )
    real_open = open

    def fake_open(path, *args, **kw):
        return real_open(info if path == "/proc/self/mountinfo" else path, *args, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(targets.os.path, "realpath", lambda p: p)
    monkeypatch.setattr(targets.os.path, "exists", lambda p: True)
    assert targets.memory_backed("/run/secrets app/x") is True
    assert targets.memory_backed("/run/secrets") is False
    assert targets.memory_backed("/var/ram/k") is True
    assert targets.memory_backed("/var/ramp") is False
    assert targets.memory_backed("/var") is False


def _moved_to_names(notifier):
    """Names of the IN_MOVED_TO events queued on a raw inotify descriptor."""
    import struct

    names = []
    try:
        data = os.read(notifier.fileno(), 65536)
    except BlockingIOError:
        return names
    offset = 0
    while offset < len(data):
        _, mask, _, length = struct.unpack_from("iIII", data, offset)
        name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
        if mask & 0x80:  # IN_MOVED_TO
            names.append(name)
        offset += 16 + length
    return names


def test_inotify_watcher_sees_one_swap_per_change_and_none_without(tmp_path):
    """What kubelet consumers do: watch the directory for `..data` being renamed into place."""
    from shim.proc.native import IN_MOVED_TO, inotify

    d = tmp_path / "s"
    targets.write_dir(str(d), {"a": b"1"})
    notifier = inotify()
    assert notifier is not None and notifier.watch(str(d), IN_MOVED_TO)
    try:
        targets.write_dir(str(d), {"a": b"1"})  # unchanged: no event at all
        assert _moved_to_names(notifier) == []
        targets.write_dir(str(d), {"a": b"2", "b": b"new"})
        assert _moved_to_names(notifier) == ["..data"]
        # On the event every key, new ones too, is readable through its link.
        assert (d / "a").read_bytes() == b"2" and (d / "b").read_bytes() == b"new"
    finally:
        notifier.close()


# -- all or nothing (issue 16 D24) ---------------------------------------------------------
def test_targets_are_published_all_or_nothing(tmp_path):
    (tmp_path / "in-the-way").mkdir()
    writes = [(targets.stage_file, (str(tmp_path / "a" / "one"), b"1")),
              (targets.stage_dir, (str(tmp_path / "vol"), {"k": b"v"})),
              (targets.stage_file, (str(tmp_path / "in-the-way"), b"3"))]
    with pytest.raises(ShimError) as err:
        targets.write_all_or_nothing(writes)
    assert "is a directory" in err.value.message()
    assert sorted(os.listdir(tmp_path)) == ["in-the-way"]  # no file, no dir, no temp, no parent
    assert targets.write_all_or_nothing(writes[:2]) == 2
    assert (tmp_path / "a" / "one").read_bytes() == b"1"
    assert (tmp_path / "vol" / "k").read_bytes() == b"v"


def test_a_staged_file_is_invisible_until_committed(tmp_path):
    target = tmp_path / "s"
    target.write_bytes(b"old")
    staged = targets.stage_file(str(target), b"new")
    assert target.read_bytes() == b"old"
    staged.abort()
    assert os.listdir(tmp_path) == ["s"] and target.read_bytes() == b"old"
    targets.stage_file(str(target), b"new").commit()
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("path", ["dir/", "dir/.", "dir/.."])
def test_a_file_path_naming_a_directory_is_refused(tmp_path, path):
    with pytest.raises(ShimError) as err:
        targets.write_file(f"{tmp_path}/{path}", b"x")
    assert "names a directory" in err.value.message()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key,problem", [("../escape", "'/'"), (".._x", "'..'"), ("", "empty"),
                                         ("a\0b", "NUL"), ("x" * 256, "255")])
def test_key_problems_name_the_cause(key, problem):
    assert problem in targets.key_problem(key)
    assert targets.key_problem("ok.key-1") is None
