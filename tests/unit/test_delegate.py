"""Which command runs: argv, SHIM_ENTRYPOINT, image entrypoint (per platform), PATH lookup."""

import pytest

from shim.config import options
from shim.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_USAGE, ShimError
from shim.run import delegate


def resolve(argv, env=None):
    return delegate.command_from(options.resolve(argv, env or {}), machine="x86_64")


def test_argv_wins_over_everything():
    assert resolve(["--", "a", "b"], {"SHIM_ENTRYPOINT": "x y"}) == ["a", "b"]


def test_entrypoint_is_split_like_a_shell_but_not_run_by_one():
    assert resolve([], {"SHIM_ENTRYPOINT": "python -c 'print(1); $HOME' \"a b\""}) == \
        ["python", "-c", "print(1); $HOME", "a b"]


def test_image_entrypoint_shapes():
    spec = '{"Entrypoint": ["/ep"], "Cmd": ["--flag"]}'
    assert resolve(["--image-entrypoint", spec]) == ["/ep", "--flag"]
    assert resolve(["--image-entrypoint", '{"config": {"Cmd": ["sh"]}}']) == ["sh"]
    platforms = '{"linux/amd64": ["/amd"], "linux/arm64": {"Entrypoint": ["/arm"]}}'
    assert resolve(["--image-entrypoint", platforms]) == ["/amd"]
    assert delegate.command_from(options.resolve(["--image-entrypoint", platforms], {}),
                                 machine="aarch64") == ["/arm"]
    with pytest.raises(ShimError):
        delegate.command_from(options.resolve(["--image-entrypoint", '{"linux/s390x": ["x"]}'], {}),
                              machine="x86_64")


def test_image_entrypoint_from_file(tmp_path):
    f = tmp_path / "ep.json"
    f.write_text('{"Entrypoint": ["/from-file"]}')
    assert resolve(["--image-entrypoint", "@" + str(f)]) == ["/from-file"]


def test_no_command_is_a_usage_error():
    with pytest.raises(ShimError) as info:
        resolve([])
    assert info.value.code == EXIT_USAGE and "SHIM_ENTRYPOINT" in info.value.message()


def test_find_executable(tmp_path):
    exe = tmp_path / "prog"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    noexec = tmp_path / "data"
    noexec.write_text("x")
    assert delegate.find_executable("prog", {"PATH": f"/nonexistent:{tmp_path}"}) == str(exe)
    with pytest.raises(ShimError) as info:
        delegate.find_executable("nope", {"PATH": str(tmp_path)})
    assert info.value.code == EXIT_NOT_FOUND
    with pytest.raises(ShimError) as info:  # no x bit at all: not even root may exec it
        delegate.find_executable(str(noexec), {})
    assert info.value.code == EXIT_NOT_EXECUTABLE
    with pytest.raises(ShimError) as info:
        delegate.find_executable(str(tmp_path), {})
    assert info.value.code == EXIT_NOT_EXECUTABLE
