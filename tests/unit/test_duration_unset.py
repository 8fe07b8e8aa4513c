"""An empty or null duration is unset: the option's default, never None where the run uses a
number (`--fetch-deadline=` once ended a run with an internal error, exit 119)."""

import pytest

from shim.config import options
from shim.config.option import DURATION

DURATIONS = [opt for opt in options.OPTIONS if opt.kind == DURATION]


@pytest.mark.parametrize("opt", DURATIONS, ids=lambda o: o.name)
def test_empty_or_null_duration_is_the_default(opt):
    by_flag = options.resolve([f"{opt.flags[0]}=", "--", "true"], {})
    by_env = options.resolve(["--", "true"], {opt.env: ""})
    assert by_flag.value(opt.name) == opt.default
    assert by_env.value(opt.name) == opt.default
    if opt.key:
        section, _, key = opt.key.rpartition(".")
        doc = {section: {key: None}} if section else {key: None}
        errors: list = []
        values = options.parse_config(doc, None, errors)
        assert errors == [] and values.get(opt.name, opt.default) == opt.default
