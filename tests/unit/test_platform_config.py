"""The platform in the configuration: auto profile, the commands map, residency, messages."""

import json

import pytest

from shim.config import options
from shim.errors import ShimError
from shim.run import delegate, runtime
from shim.run.pipeline import Outcome, choose_mode

K8S = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
SM = {"TRAINING_JOB_NAME": "job"}


def config_file(tmp_path, doc):
    path = tmp_path / "shim.json"
    path.write_text(json.dumps(doc))
    return str(path)


PROFILES = {
    "supervise": {"grace": "1s"},
    "profile": "fallback",
    "profiles": {"sagemaker": {"supervise": {"grace": "2s"}},
                 "kubernetes": {"supervise": {"grace": "3s"}},
                 "fallback": {"supervise": {"grace": "4s"}},
                 "chosen": {"supervise": {"grace": "5s"}}},
}


@pytest.mark.parametrize("argv,environ,grace,profile", [
    ([], SM, 2.0, "sagemaker"),  # sagemaker-training -> family "sagemaker"
    ([], K8S, 3.0, "kubernetes"),
    ([], {"NOMAD_ALLOC_ID": "a"}, 4.0, "fallback"),  # no nomad profile: the file's own "profile"
    (["--profile", "chosen"], SM, 5.0, "chosen"),  # an explicit profile wins
    ([], dict(K8S, SHIM_PROFILE="chosen"), 5.0, "chosen"),
    (["--runtime", "kubernetes"], SM, 3.0, "kubernetes"),  # --runtime picks the profile too
])
def test_profile_follows_the_runtime(tmp_path, argv, environ, grace, profile):
    path = config_file(tmp_path, PROFILES)
    conf = options.resolve(["--config", path] + argv + ["--", "x"], environ)
    assert conf.supervise.grace == grace
    assert conf.profile == profile


def test_runtime_in_the_file_picks_the_profile(tmp_path):
    doc = dict(PROFILES, platform={"runtime": "kubernetes"})
    conf = options.resolve(["--config", config_file(tmp_path, doc), "--", "x"], SM)
    assert (conf.platform.runtime, conf.sources["runtime"], conf.supervise.grace) == ("kubernetes", "file", 3.0)


def test_runtime_sources():
    assert options.resolve(["--", "x"], SM).sources["runtime"] == "detected"
    assert options.resolve(["--runtime", "ecs", "--", "x"], SM).sources["runtime"] == "flag"
    conf = options.resolve(["--", "x"], dict(SM, SHIM_RUNTIME="lambda"))
    assert (conf.platform.runtime, conf.sources["runtime"]) == ("lambda", "env")
    assert conf.detection.evidence == ["--runtime / SHIM_RUNTIME given"]


def test_unknown_runtime_is_a_usage_error():
    with pytest.raises(ShimError) as caught:
        options.resolve(["--runtime", "mainframe", "--", "x"], {})
    assert "invalid value" in caught.value.message() and "sagemaker-training" in caught.value.message()


def test_serve_word_and_sagemaker_root_reach_detection(tmp_path):
    (tmp_path / "opt/ml/model").mkdir(parents=True)
    conf = options.resolve(["--sagemaker-root", str(tmp_path), "serve"], {})
    assert conf.platform.runtime == "sagemaker-endpoint"
    assert conf.command == ("serve",)


def test_commands_map_from_file_and_flag(tmp_path):
    doc = {"commands": {"train": ["python", "-m", "app.train"], "serve": ["gunicorn", "app:wsgi"]}}
    conf = options.resolve(["--config", config_file(tmp_path, doc), "train", "--epochs", "3"], {})
    assert delegate.by_first_word(list(conf.command), conf.commands) == \
        ["python", "-m", "app.train", "--epochs", "3"]
    conf = options.resolve(["--commands", '{"serve": ["srv"]}', "--", "serve"], {})
    assert delegate.by_first_word(list(conf.command), conf.commands) == ["srv"]
    assert delegate.by_first_word(["other"], conf.commands) == ["other"]


@pytest.mark.parametrize("raw,text", [
    ('["train"]', "expected an object, got an array"),
    ('{"train": []}', "expected a non-empty array of non-empty strings"),
    ('{"train": "python train.py"}', "expected a non-empty array"),
    ('{"train": ["", "x"]}', "expected a non-empty array"),
    ("{nope", "malformed JSON"),
])
def test_commands_map_errors(raw, text):
    with pytest.raises(ShimError) as caught:
        options.resolve(["--commands", raw, "--", "x"], {})
    assert text in caught.value.message()


def test_commands_map_in_file_errors_collected(tmp_path):
    errors = []
    options.parse_config({"commands": {"train": 3}}, None, errors)
    assert errors and errors[0][0] == "$.commands"


def test_failure_file_needs_a_resident_shim():
    assert choose_mode(options.resolve(["--", "x"], {}), False) == "exec"
    conf = options.resolve(["--sagemaker-layout", "--", "x"], {})
    assert choose_mode(conf, False) == "supervise"
    assert choose_mode(options.resolve(["--", "x"], SM), False) == "supervise"
    with pytest.raises(ShimError) as caught:
        choose_mode(options.resolve(["--exec", "--sagemaker-layout", "--", "x"], {}), False)
    assert "--sagemaker-layout (failure file)" in caught.value.message()


@pytest.mark.parametrize("outcome,text", [
    (Outcome(3, "exited", 3), "the delegate exited with code 3"),
    (Outcome(137, "signaled", None, "SIGKILL"), "the delegate was killed by SIGKILL (exit code 137)"),
    (Outcome(124, "timeout"), "ran past --timeout"),
    (Outcome(127, "not-found", error="run delegate: not found"), "shim: run delegate: not found"),
])
def test_failure_reasons(outcome, text):
    assert text in runtime.failure_reason(outcome)


def test_shim_runtime_exported_and_nothing_else_without_options():
    conf = options.resolve(["--", "x"], K8S)
    lines = []
    env = runtime.prepare(conf, K8S, lambda level, msg: lines.append((level, msg)))
    assert env == {"SHIM_RUNTIME": "kubernetes"}
    assert lines == [("info", "runtime kubernetes (detected: env KUBERNETES_SERVICE_HOST is set)")]


def test_nothing_configured_nothing_fetched_or_read(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(runtime, "fetch", lambda ref, *rest: asked.append(ref))
    conf = options.resolve(["--hyperparameters-from", "ref+s3://b/k", "--sagemaker-root", str(tmp_path),
                            "--", "x"], SM)
    assert runtime.prepare(conf, SM, lambda *a: None) == {"SHIM_RUNTIME": "sagemaker-training"}
    assert asked == []

