"""--refresh has a documented floor (1s): `--refresh 1ms` fetched 1,029 times in 2 s."""

import pytest

from shim.config import options
from shim.errors import EXIT_USAGE, ShimError


@pytest.mark.parametrize("argv, environ", [
    (["--refresh", "1ms"], {}),
    (["--refresh", "0.5"], {}),
    ([], {"SHIM_REFRESH": "999ms"}),
])
def test_a_refresh_below_the_floor_is_a_usage_error(argv, environ):
    with pytest.raises(ShimError) as info:
        options.resolve(argv + ["--", "true"], environ)
    assert info.value.code == EXIT_USAGE
    assert "below the floor of 1s" in info.value.message()


def test_the_floor_itself_and_above_are_accepted():
    for text in ("1s", "5m"):
        config = options.resolve(["--refresh", text, "--", "true"], {})
        assert config.secrets.refresh >= 1.0
    assert options.resolve(["--", "true"], {}).secrets.refresh is None  # off by default


def test_the_floor_is_in_the_help():
    assert "at least 1s" in options.BY_NAME["refresh"].help


@pytest.mark.parametrize("flag, value, floor", [
    ("--fetch-deadline", "0", "100ms"),  # was: every fetch "not finished within the 0s deadline"
    ("--fetch-deadline", "50ms", "100ms"),
])
def test_the_fetch_deadline_has_a_floor(flag, value, floor):
    with pytest.raises(ShimError) as info:
        options.resolve([flag, value, "--", "true"], {})
    assert f"below the floor of {floor}" in info.value.message()
    name = flag[2:].replace("-", "_")
    assert f"at least {floor}" in options.BY_NAME[name].help


def test_a_zero_poll_interval_is_kept_as_the_waiter_floor():
    # --poll-interval 0 stays accepted (issue 18: it must not spin): the waiter polls at
    # its documented floor instead, so no usage error here.
    assert options.resolve(["--poll-interval", "0", "--", "true"], {}).steps.poll_interval == 0
