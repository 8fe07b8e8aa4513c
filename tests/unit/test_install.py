"""`shim install`: settings, planning, and the file mechanics with real processes.

Single installs run the source tree (`python -m shim install --from BIN DIR`)
as a process; the process-heavy ones (ten at once, kill -9 at random moments, a
second version beside a running first) are in tests/process/test_install_processes.py.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from install_support import REPO, elf, no_temps, run_install
from shim import __version__
from shim.commands import install
from shim.errors import EXIT_SETUP, EXIT_USAGE, ShimError
from shim.util.platforms import running_arch


@pytest.fixture
def binary(tmp_path):
    (tmp_path / "src").mkdir()
    return elf(tmp_path / "src" / "shim-linux-amd64", 0x3E, seed=1)


# -- settings -------------------------------------------------------------------

@pytest.mark.parametrize(
    "argv, env, expected",
    [
        (["/d"], {}, dict(dest="/d", versioned=False, arch="", source="", list=False)),
        (["--versioned", "--arch", "all", "--from=/b", "/d"], {},
         dict(dest="/d", versioned=True, arch="all", source="/b")),
        ([], {"SHIM_INSTALL_DIR": "/e", "SHIM_INSTALL_VERSIONED": "yes", "SHIM_INSTALL_ARCH": "arm64"},
         dict(dest="/e", versioned=True, arch="arm64")),
        (["/d", "--arch=amd64"], {"SHIM_INSTALL_ARCH": "arm64", "SHIM_INSTALL_FROM": "/x"},
         dict(arch="amd64", source="/x")),
        (["--list", "/d"], {}, dict(list=True)),
        (["--", "-odd-dir"], {}, dict(dest="-odd-dir")),
        (["/d"], {"SHIM_INSTALL_VERSIONED": "0"}, dict(versioned=False)),
    ],
)
def test_settings_resolve_flags_over_env_over_defaults(argv, env, expected):
    settings = install.parse(argv, env)
    for key, value in expected.items():
        assert getattr(settings, key) == value, key


@pytest.mark.parametrize(
    "argv, env, needle",
    [
        ([], {}, "no destination directory"),
        (["/a", "/b"], {}, "takes one directory"),
        (["--arch", "s390x", "/d"], {}, "invalid value \"s390x\""),
        (["--bogus", "/d"], {}, "unknown option"),
        (["/d", "--from"], {}, "needs a value"),
        (["/d"], {"SHIM_INSTALL_VERSIONED": "maybe"}, "expected true or false"),
    ],
)
def test_bad_input_is_a_usage_error(argv, env, needle):
    with pytest.raises(ShimError) as err:
        install.parse(argv, env)
    assert err.value.code == EXIT_USAGE
    assert needle in err.value.message()


def test_from_source_without_from_says_what_to_do(tmp_path):
    result = run_install(str(tmp_path / "d"))
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("shim: install shim: running from source")
    assert "--from PATH" in result.stderr and "SHIM_INSTALL_FROM" in result.stderr
    assert not (tmp_path / "d").exists()


def test_running_binary_is_the_real_path_of_proc_self_exe():
    assert install.running_binary({}, frozen=True) == os.path.realpath(sys.executable)
    assert install.running_binary({"STATICX_PROG_PATH": "/x/../bin/sh"}, frozen=True) == os.path.realpath("/bin/sh")


# -- planning ----------------------------------------------------------------------

def test_plan_names_one_arch_shim_and_all_arches_by_platform(tmp_path):
    amd = elf(tmp_path / "shim", 0x3E)
    assert install.plan(str(amd), "") == [("shim", str(amd))]
    assert install.plan(str(amd), "amd64") == [("shim", str(amd))]
    with pytest.raises(ShimError, match="no linux/arm64 binary"):
        install.plan(str(amd), "arm64")
    assert install.plan(str(amd), "all") == [("shim-linux-amd64", str(amd))]
    arm = elf(tmp_path / "shim-linux-arm64", 0xB7)
    assert install.plan(str(amd), "arm64") == [("shim", str(arm))]
    assert install.plan(str(amd), "all") == [("shim-linux-amd64", str(amd)), ("shim-linux-arm64", str(arm))]


def test_elf_arch_reads_the_header(tmp_path):
    assert install.elf_arch(str(elf(tmp_path / "a", 0xB7))) == "arm64"
    (tmp_path / "t").write_text("#!/bin/sh\n")
    assert install.elf_arch(str(tmp_path / "t")) == ""
    # The host's own shell is an ELF executable of the running arch.
    assert install.elf_arch("/bin/sh") == running_arch()


# -- flat install -------------------------------------------------------------------

def test_install_copies_bytes_with_mode_0755_and_is_a_no_op_the_second_time(tmp_path, binary):
    dest = tmp_path / "d"
    first = run_install("--from", str(binary), str(dest))
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"installed {dest}/shim\n"
    target = dest / "shim"
    assert target.read_bytes() == binary.read_bytes()
    assert target.stat().st_mode & 0o7777 == 0o755
    before = target.stat()
    second = run_install("--from", str(binary), str(dest))
    assert second.returncode == 0 and second.stdout == f"unchanged {dest}/shim\n"
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert no_temps(dest) == []


def test_install_replaces_different_content_and_a_wrong_mode(tmp_path, binary):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "shim").write_bytes(b"old")
    assert run_install("--from", str(binary), str(dest)).stdout.startswith("installed")
    (dest / "shim").chmod(0o700)
    assert run_install("--from", str(binary), str(dest)).stdout.startswith("installed")
    assert (dest / "shim").stat().st_mode & 0o7777 == 0o755


def test_a_symlink_at_the_destination_is_replaced_by_a_file(tmp_path, binary):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "shim").symlink_to(binary)
    assert run_install("--from", str(binary), str(dest)).stdout.startswith("installed")
    assert not (dest / "shim").is_symlink() and (dest / "shim").read_bytes() == binary.read_bytes()


def test_a_file_as_destination_says_to_mount_elsewhere(tmp_path, binary):
    result = run_install("--from", str(binary), str(binary))
    assert result.returncode == EXIT_USAGE
    assert "is not a directory" in result.stderr and "mount the volume elsewhere" in result.stderr


def test_install_reads_the_real_path_not_a_symlink(tmp_path, binary):
    link = tmp_path / "link"
    link.symlink_to(binary)
    assert run_install("--from", str(link), "--arch", "all", str(tmp_path / "d")).returncode == 0
    assert (tmp_path / "d" / "shim-linux-amd64").read_bytes() == binary.read_bytes()


def test_sweep_keeps_fresh_and_locked_temps(tmp_path):
    import fcntl

    fresh = tmp_path / f"{install.TMP_PREFIX}fresh"
    locked = tmp_path / f"{install.TMP_PREFIX}locked"
    stale = tmp_path / f"{install.TMP_PREFIX}stale"
    for path in (fresh, locked, stale):
        path.write_bytes(b"x")
    old = time.time() - 2 * install.STALE_AFTER
    os.utime(locked, (old, old))
    os.utime(stale, (old, old))
    with open(locked, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        install.sweep(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, locked.name])


# -- versioned ------------------------------------------------------------------------

def test_versioned_names_version_and_digest_and_lists(tmp_path, binary):
    import hashlib

    dest = tmp_path / "pvc"
    result = run_install("--versioned", "--from", str(binary), str(dest))
    assert result.returncode == 0, result.stderr
    name = f"{__version__}-{hashlib.sha256(binary.read_bytes()).hexdigest()[:12]}"
    assert result.stdout == f"installed {dest}/{name}/shim\n"
    assert (dest / name / "shim").stat().st_mode & 0o7777 == 0o755
    assert (dest / name).stat().st_mode & 0o7777 == 0o755
    again = run_install("--versioned", "--from", str(binary), str(dest))
    assert again.stdout == f"unchanged {dest}/{name}/shim\n"
    listed = run_install("--list", str(dest))
    assert listed.returncode == 0 and listed.stdout == f"{name} shim\n"


def test_existing_version_directory_with_other_content_is_never_modified(tmp_path, binary):
    dest = tmp_path / "pvc"
    out = run_install("--versioned", "--from", str(binary), str(dest)).stdout.split()[1]
    Path(out).chmod(0o644)
    Path(out).write_bytes(b"tampered")
    result = run_install("--versioned", "--from", str(binary), str(dest))
    assert result.returncode == EXIT_SETUP
    assert "never modified" in result.stderr
    assert Path(out).read_bytes() == b"tampered"


def test_versioned_all_arches_share_one_directory(tmp_path):
    src = tmp_path / "img"
    src.mkdir()
    amd = elf(src / "shim", 0x3E, seed=3)
    arm = elf(src / "shim-linux-arm64", 0xB7, seed=4)
    result = run_install("--versioned", "--arch", "all", "--from", str(amd), str(tmp_path / "pvc"))
    assert result.returncode == 0, result.stderr
    paths = [Path(line.split()[1]) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == ["shim-linux-amd64", "shim-linux-arm64"]
    assert paths[0].parent == paths[1].parent
    assert paths[0].read_bytes() == amd.read_bytes() and paths[1].read_bytes() == arm.read_bytes()


# -- failures ---------------------------------------------------------------------------

def test_unwritable_destination_is_a_setup_error(tmp_path, binary):
    (tmp_path / "file").write_text("")
    result = run_install("--from", str(binary), str(tmp_path / "file" / "d"))
    assert result.returncode == EXIT_SETUP
    assert result.stderr.startswith(f"shim: install {tmp_path}/file/d: ")
    assert result.stderr.count("\n") == 1


def test_missing_source_is_a_usage_error(tmp_path):
    result = run_install("--from", str(tmp_path / "nope"), str(tmp_path / "d"))
    assert result.returncode == EXIT_USAGE
    assert "does not exist" in result.stderr


def test_install_imports_nothing_heavy():
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); before = set(sys.modules); import shim.commands.install; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    mods = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True).stdout.split())
    assert "shim.commands.install" in mods
    assert not mods & {"argparse", "hashlib", "shutil", "subprocess", "json", "logging", "tempfile", "dataclasses"}


def test_digest_without_hashlib_uses_the_builtin_sha256(tmp_path, binary):
    """Static builds may lack OpenSSL's _hashlib; the versioned name must not change."""
    import hashlib

    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.modules['hashlib'] = None; "
            f"from shim.commands import install; print(install.sha256_file({str(binary)!r}))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == hashlib.sha256(binary.read_bytes()).hexdigest()


@pytest.mark.parametrize("code, fix", [(13, "fsGroup"), (30, "read-only"), (28, "free space")])
def test_io_errors_say_what_to_do(code, fix):
    err = install._setup_error("/d", OSError(code, os.strerror(code)),
                               "check that the directory is writable and has space")
    assert err.code == EXIT_SETUP and fix in err.message()
