"""Run policy: exec vs supervise, outcome mapping, result records, schema."""

import json
import signal
from pathlib import Path

import pytest

from shim.config import options
from shim.errors import EXIT_CANCELLED, EXIT_TIMEOUT, EXIT_USAGE, ShimError
from shim.proc.reaper import Exit
from shim.run import results
from shim.run.pipeline import Outcome, choose_mode, resident_reasons


def conf(*argv):
    return options.resolve(list(argv) + ["--", "x"], {})


@pytest.mark.parametrize("argv,pid1,mode", [
    ([], False, "exec"),
    ([], True, "supervise"),
    (["--wait-file", "/x", "--pre-hooks", "/d", "-e", "A=1"], False, "exec"),
    (["--timeout", "1s"], False, "supervise"),
    (["--post-file", "/p"], False, "supervise"),
    (["--result-file", "/r"], False, "supervise"),
    (["--termination-path", "/t"], False, "supervise"),
    (["--cancel-file", "/c"], False, "supervise"),
    (["--post-hooks", "/d"], False, "supervise"),
    (["--on-error", "continue"], False, "supervise"),
    (["--exit-remap", "1:0"], False, "supervise"),
    (["--rewrite", "TERM:QUIT"], False, "supervise"),
    (["--signal-group"], False, "supervise"),
    (["--supervise"], False, "supervise"),
    (["--exec"], True, "exec"),
])
def test_choose_mode(argv, pid1, mode):
    assert choose_mode(conf(*argv), pid1) == mode


def test_exec_conflicts_are_usage_errors():
    with pytest.raises(ShimError) as info:
        choose_mode(conf("--exec", "--timeout", "1s", "--post-file", "/p"), False)
    assert info.value.code == EXIT_USAGE
    assert "--timeout" in info.value.message() and "--post-file" in info.value.message()


def test_resident_reasons_name_flags():
    assert resident_reasons(conf("--timeout", "1"), True) == ["PID 1", "--timeout"]


@pytest.mark.parametrize("exit_,argv,code", [
    (Exit(0), [], 0),
    (Exit(42), [], 42),
    (Exit(143, signal.SIGTERM, "signaled"), [], 143),
    (Exit(143, signal.SIGTERM, "signaled"), ["--exit-remap", "143:0"], 0),
    (Exit(3), ["--on-error", "continue"], 0),
    (Exit(143, signal.SIGTERM, "timeout"), [], EXIT_TIMEOUT),
    (Exit(143, signal.SIGTERM, "timeout"), ["--on-error", "continue"], 0),
    (Exit(0, None, "cancelled"), ["--on-error", "continue"], EXIT_CANCELLED),
])
def test_outcome_from_exit(exit_, argv, code):
    outcome = Outcome.from_exit(exit_, conf(*argv))
    assert outcome.exit_code == code
    assert outcome.delegate_code == exit_.code
    assert outcome.reason == exit_.reason


def test_record_and_termination_cap():
    outcome = Outcome(0, "exited", 0)
    small = results.build_record(outcome, {"delegate": 0.5}, 100.0, 101.25, {"a": "1"})
    assert small["duration_ms"] == 1250.0 and small["phases_ms"] == {"delegate": 500.0}
    assert small["started_at"] == "1970-01-01T00:01:40.000Z"
    msg, spill = results.termination_message(small, "/spill")
    assert spill is None and json.loads(msg)["results"] == {"a": "1"}
    big = results.build_record(outcome, {}, 0, 1, {f"r{i}": "x" * 1000 for i in range(10)})
    msg, spill = results.termination_message(big, "/spill")
    assert len(msg) <= results.TERMINATION_LIMIT
    short = json.loads(msg)
    assert short["results_file"] == "/spill" and short["exit_code"] == 0
    assert json.loads(spill)["results"] == big["results"]


def test_shipped_schema_is_generated():
    from shim.config.schema import schema

    shipped = json.loads((Path(__file__).parents[2] / "shim" / "config" / "config.schema.json").read_text())
    assert shipped == schema(), "regenerate: python -m shim.config.schema > shim/config/config.schema.json"


def test_schema_agrees_with_parser():
    import jsonschema  # a dev dependency: missing means a broken set-up, not a skip

    from shim.config.schema import schema

    validator = jsonschema.Draft202012Validator(schema())
    good = {"supervise": {"grace": "1m30s", "rewrite": {"TERM": "QUIT"}, "exit_remap": {"143": 0}},
            "env": {"set": {"A": "1"}, "files": ["/e"]}, "steps": {"wait_files": ["/w"]},
            "hooks": {"failure": "warn"}, "results": {"file": "/r"},
            "profiles": {"k8s": {"supervise": {"timeout": 3}}}, "command": ["x"]}
    assert not list(validator.iter_errors(good))
    options.parse_config(good)
    for bad in ({"supervise": {"grace": "soon"}}, {"nope": 1}, {"hooks": {"failure": "boom"}},
                {"profiles": {"p": {"profiles": {}}}}, {"steps": {"wait_files": "x"}}):
        assert list(validator.iter_errors(bad)), bad
        errors = []
        options.parse_config(bad, None, errors)
        assert errors, bad
