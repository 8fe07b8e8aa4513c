"""Runtime detection: a table of documented marker sets, with a fake file port."""

import json

import pytest

from shim.errors import ShimError
from shim.platform import detect


class FakeFiles:
    """Records every path asked about; `present` holds files, `dirs` directories."""

    def __init__(self, present=(), dirs=()):
        self.present, self.dirs, self.asked = set(present), set(dirs), []

    def exists(self, path):
        self.asked.append(path)
        return path in self.present or path in self.dirs

    def isdir(self, path):
        self.asked.append(path)
        return path in self.dirs


K8S = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
ECS = {"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc"}

CASES = [
    # (name, environ, files, dirs, first word, runtime, also)
    ("bare", {}, (), (), None, "local", []),
    ("sm-training-arn", {"TRAINING_JOB_ARN": "arn:aws:sagemaker:…:training-job/x"}, (), (), "train",
     "sagemaker-training", []),
    ("sm-training-name-on-docker", {"TRAINING_JOB_NAME": "x"}, ("/.dockerenv",), (), "train",
     "sagemaker-training", ["docker"]),
    ("training-job-name-set-by-a-pod", dict(K8S, TRAINING_JOB_NAME="x"), (), (), "train", "kubernetes", []),
    ("sm-training-arn-wins-anywhere", dict(K8S, TRAINING_JOB_ARN="arn"), (), (), "train",
     "sagemaker-training", ["kubernetes"]),
    ("sm-processing", {}, ("/opt/ml/config/processingjobconfig.json",), (), None,
     "sagemaker-processing", []),
    ("sm-endpoint", {}, ("/.dockerenv",), ("/opt/ml/model",), "serve", "sagemaker-endpoint", ["docker"]),
    ("serve-without-model-dir", {}, ("/.dockerenv",), (), "serve", "docker", []),
    ("serve-on-kubernetes", K8S, (), ("/opt/ml/model",), "serve", "kubernetes", []),
    ("sm-studio", {}, ("/opt/ml/metadata/resource-metadata.json",), (), None, "sagemaker-studio", []),
    ("batch-on-ecs", dict(ECS, AWS_BATCH_JOB_ID="j-1"), (), (), None, "batch", ["ecs"]),
    ("batch-on-eks", dict(K8S, AWS_BATCH_JOB_ID="j-1"), (), (), None, "batch", ["kubernetes"]),
    ("lambda", {"AWS_LAMBDA_FUNCTION_NAME": "f"}, (), (), None, "lambda", []),
    ("lambda-runtime-api", {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, (), (), None, "lambda", []),
    ("ecs-v4", ECS, (), (), None, "ecs", []),
    ("ecs-v3", {"ECS_CONTAINER_METADATA_URI": "http://169.254.170.2/v3/x"}, (), (), None, "ecs", []),
    ("cloud-run-job", {"CLOUD_RUN_JOB": "j", "CLOUD_RUN_EXECUTION": "e"}, (), (), None,
     "cloud-run-job", []),
    ("cloud-run", {"K_SERVICE": "s", "K_REVISION": "s-1", "PORT": "8080"}, (), (), None, "cloud-run",
     ["knative"]),
    ("knative-on-k8s", dict(K8S, K_SERVICE="s", K_REVISION="s-1"), (), (), None, "knative",
     ["kubernetes"]),
    ("knative-revision-only", {"K_REVISION": "r", "K_CONFIGURATION": "c"}, (), (), None, "knative", []),
    ("aca", {"CONTAINER_APP_NAME": "a", "CONTAINER_APP_REVISION": "a--1"}, (), (), None,
     "azure-container-apps", []),
    ("aca-job", {"CONTAINER_APP_JOB_NAME": "j"}, (), (), None, "azure-container-apps", []),
    ("nomad", {"NOMAD_ALLOC_ID": "x"}, (), (), None, "nomad", []),
    ("kubernetes", K8S, (), (), None, "kubernetes", []),
    ("kubernetes-sa-only", {}, ("/var/run/secrets/kubernetes.io/serviceaccount/namespace",), (), None,
     "kubernetes", []),
    ("kubernetes-crio", K8S, ("/run/.containerenv",), (), None, "kubernetes", ["podman"]),
    ("podman", {}, ("/run/.containerenv",), (), None, "podman", []),
    ("docker", {}, ("/.dockerenv",), (), None, "docker", []),
    ("empty-value-is-unset", {"KUBERNETES_SERVICE_HOST": ""}, (), (), None, "local", []),
]


@pytest.mark.parametrize("name,environ,present,dirs,word,runtime,also", CASES, ids=[c[0] for c in CASES])
def test_detect_table(name, environ, present, dirs, word, runtime, also):
    decision = detect.detect(environ, FakeFiles(present, dirs), word)
    assert decision.runtime == runtime
    assert decision.also == also
    assert decision.source == "detected"
    assert decision.evidence


def test_evidence_names_markers_never_values():
    environ = {"TRAINING_JOB_ARN": "arn:aws:sagemaker:us-east-1:123:training-job/secretish"}
    decision = detect.detect(environ, FakeFiles(), "train")
    assert decision.evidence == ["env TRAINING_JOB_ARN is set"]
    assert "secretish" not in json.dumps(decision.as_dict())


def test_evidence_of_conjunctions():
    decision = detect.detect({}, FakeFiles(dirs={"/opt/ml/model"}), "serve")
    assert decision.evidence == ["first argument is serve", "dir /opt/ml/model exists",
                                 "env KUBERNETES_SERVICE_HOST is not set"]


def test_override_wins():
    decision = detect.decide("sagemaker-training", dict(K8S), FakeFiles())
    assert (decision.runtime, decision.source) == ("sagemaker-training", "override")


def test_every_rule_names_a_known_runtime():
    assert {rule[0] for rule in detect.RULES} | {"local"} == set(detect.RUNTIMES)


def test_host_files_root(tmp_path):
    (tmp_path / "opt/ml/config").mkdir(parents=True)
    (tmp_path / "opt/ml/config/processingjobconfig.json").write_text("{}")
    decision = detect.detect({}, detect.HostFiles(str(tmp_path)))
    assert decision.runtime == "sagemaker-processing"
    assert detect.detect({}, detect.HostFiles(str(tmp_path / "nothing"))).runtime == "local"


def test_detect_command(capfd, tmp_path):
    from shim.commands import detect as command

    (tmp_path / ".dockerenv").write_text("")
    assert command.main(["--root", str(tmp_path)], {"NOMAD_ALLOC_ID": "a"}) == 0
    out = json.loads(capfd.readouterr().out)
    assert out == {"runtime": "nomad", "source": "detected", "evidence": ["env NOMAD_ALLOC_ID is set"],
                   "also": ["docker"]}
    assert command.main(["--runtime=ecs", f"--root={tmp_path}"], {}) == 0
    assert json.loads(capfd.readouterr().out)["runtime"] == "ecs"
    assert command.main(["--root", str(tmp_path)], {"SHIM_RUNTIME": "lambda"}) == 0
    assert json.loads(capfd.readouterr().out)["source"] == "override"
    (tmp_path / "opt/ml/model").mkdir(parents=True)
    assert command.main(["--root", str(tmp_path), "serve"], {}) == 0
    assert json.loads(capfd.readouterr().out)["runtime"] == "sagemaker-endpoint"


@pytest.mark.parametrize("argv,text", [
    (["--runtime", "mainframe"], 'unknown runtime "mainframe"; use one of sagemaker-training'),
    (["--bogus"], "unknown option"),
    (["--root"], "needs a value"),
])
def test_detect_command_errors(argv, text):
    from shim.commands import detect as command

    with pytest.raises(ShimError) as caught:
        command.main(argv, {})
    assert text in caught.value.message()
