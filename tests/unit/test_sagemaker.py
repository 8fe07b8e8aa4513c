"""The SageMaker contract both ways, under a temp root, with recording fakes for fetching."""

import json
import os

import pytest

from shim.errors import ShimError
from shim.platform import sagemaker
from shim.platform.sagemaker import Settings


class Recorder:
    """A log port that keeps (level, message)."""

    def __init__(self):
        self.lines = []

    def __call__(self, level, message):
        self.lines.append((level, message))


class FakeFetch:
    """fetch(ref) -> bytes and fetch_tree(ref) -> [(path, bytes)] from dicts; records refs."""

    def __init__(self, docs=None, trees=None):
        self.docs, self.trees, self.asked = docs or {}, trees or {}, []

    def fetch(self, ref):
        self.asked.append(ref)
        return self.docs[ref]

    def fetch_tree(self, ref):
        self.asked.append(ref)
        if ref not in self.trees:
            raise ShimError("fetch", ref, "404 NoSuchKey", "check the prefix")
        return self.trees[ref]


def write_hp(root, doc):
    target = root / sagemaker.HYPERPARAMETERS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc))


# -- on SageMaker ------------------------------------------------------------------------

def test_hyperparameters_as_env(tmp_path):
    write_hp(tmp_path, {"learning-rate": "0.10", "sagemaker_program": '"train.py"', "epochs": "3",
                        "layers": "[64, 32]"})
    env = sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env="HP_"), FakeFetch().fetch,
                           Recorder())
    # Strings stay exactly as written ("0.10" is not re-formatted); SDK-quoted strings lose quotes.
    assert env == {"HP_LEARNING_RATE": "0.10", "HP_SAGEMAKER_PROGRAM": "train.py", "HP_EPOCHS": "3",
                   "HP_LAYERS": "[64, 32]"}


def test_hyperparameters_env_empty_prefix_and_collision(tmp_path):
    write_hp(tmp_path, {"a-b": "1", "a_b": "2"})
    with pytest.raises(ShimError) as caught:
        sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env=""), FakeFetch().fetch, Recorder())
    assert 'hyperparameters "a-b" and "a_b"' in caught.value.message()
    assert "both become A_B" in caught.value.message()


def test_hyperparameters_env_invalid_name(tmp_path):
    write_hp(tmp_path, {"1st": "x"})
    with pytest.raises(ShimError) as caught:
        sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env=""), FakeFetch().fetch, Recorder())
    assert '"1ST" is not a valid variable name' in caught.value.message()


def test_hyperparameters_file_json_typed(tmp_path):
    write_hp(tmp_path, {"lr": "0.1", "name": '"resnet"', "raw": "hello", "flags": '{"a": true}'})
    out = tmp_path / "etc" / "app" / "params.json"
    env = sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_file=str(out)), FakeFetch().fetch,
                           Recorder())
    assert env == {}
    assert json.loads(out.read_text()) == {"lr": 0.1, "name": "resnet", "raw": "hello", "flags": {"a": True}}
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_hyperparameters_file_dotenv_round_trips(tmp_path):
    from shim.run.envlayer import parse_dotenv

    values = {"plain": "x y", "quote": "it's $HOME \\n", "multi": "a\nb", "empty": ""}
    write_hp(tmp_path, values)
    out = tmp_path / "hp.env"
    sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_file=str(out)), FakeFetch().fetch,
                     Recorder())
    parsed = dict(parse_dotenv(out.read_text(), str(out), {}))
    assert parsed == {"PLAIN": "x y", "QUOTE": "it's $HOME \\n", "MULTI": "a\nb", "EMPTY": ""}


def test_bulk_hyperparameters_from_ref_under_job_keys(tmp_path):
    write_hp(tmp_path, {"lr": "0.5"})
    bulk = {"lr": 0.1, "vocab": ["a", "b"], **{f"k{i}": i for i in range(300)}}
    fake = FakeFetch(docs={"ref+s3://b/hp.json": json.dumps(bulk).encode()})
    settings = Settings(sagemaker_root=str(tmp_path), hyperparameters_env="HP_", hyperparameters_from="ref+s3://b/hp.json")
    env = sagemaker.expose(settings, fake.fetch, Recorder())
    assert fake.asked == ["ref+s3://b/hp.json"]
    assert env["HP_LR"] == "0.5"  # the job's own key wins over the bulk payload
    assert env["HP_VOCAB"] == '["a","b"]'
    assert env["HP_K299"] == "299"
    assert len(env) == 302


@pytest.mark.parametrize("content,text", [
    (b"{nope", "not JSON"),
    (b'["a"]', "expected a JSON object, got list"),
])
def test_malformed_hyperparameters(tmp_path, content, text):
    target = tmp_path / sagemaker.HYPERPARAMETERS
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    with pytest.raises(ShimError) as caught:
        sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env="HP_"), FakeFetch().fetch,
                         Recorder())
    assert text in caught.value.message()
    assert str(target) in caught.value.message()


def test_hyperparameters_dir_is_a_configmap_volume(tmp_path):
    write_hp(tmp_path, {"lr": "0.1", "name": '"resnet"'})
    out = tmp_path / "etc/hp"
    sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_dir=str(out)), FakeFetch().fetch,
                     Recorder())
    assert os.readlink(out / "lr") == "..data/lr"
    assert (out / "lr").read_text() == "0.1" and (out / "name").read_text() == "resnet"
    assert oct((out / "lr").stat().st_mode & 0o777) == "0o644"


def test_missing_hyperparameters_file_is_empty(tmp_path):
    log = Recorder()
    assert sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env="HP_"),
                            FakeFetch().fetch, log) == {}
    assert log.lines and "no hyperparameters" in log.lines[0][1]


# -- off SageMaker: the layout -------------------------------------------------------------

def layout_settings(tmp_path, **kw):
    base = {"sagemaker_root": str(tmp_path), "sagemaker_layout": True,
            "hyperparameters": {"epochs": 3, "lr": 0.1, "name": "x"},
            "channels": {"train": "ref+s3://data/train/", "test": "ref+s3://data/test/"}}
    base.update(kw)
    return Settings(**base)


def test_synthesise_layout(tmp_path):
    fake = FakeFetch(trees={"ref+s3://data/train/": [("part-0.csv", b"1,2\n"), ("sub/part-1.csv", b"3,4\n")],
                            "ref+s3://data/test/": [("t.csv", b"5,6\n")]})
    env = sagemaker.synthesise(layout_settings(tmp_path, job_name="job-1"), {}, fake.fetch, fake.fetch_tree,
                               Recorder())
    config = tmp_path / "opt/ml/input/config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"epochs": "3", "lr": "0.1", "name": "x"}
    assert json.loads((config / "resourceconfig.json").read_text()) == {
        "current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {
        "train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
        "test": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}
    data = tmp_path / "opt/ml/input/data"
    assert (data / "train/sub/part-1.csv").read_bytes() == b"3,4\n"
    assert (data / "test/t.csv").read_bytes() == b"5,6\n"
    for d in ("opt/ml/model", "opt/ml/output/data", "opt/ml/checkpoints"):
        assert (tmp_path / d).is_dir()
    assert env == {"TRAINING_JOB_NAME": "job-1"}


def test_synthesise_replaces_channel_on_restart(tmp_path):
    fake = FakeFetch(trees={"ref+s3://d/": [("new", b"n")]})
    stale = tmp_path / "opt/ml/input/data/train"
    stale.mkdir(parents=True)
    (stale / "old").write_bytes(b"o")
    sagemaker.synthesise(Settings(sagemaker_root=str(tmp_path), channels={"train": "ref+s3://d/"}), {}, fake.fetch,
                         fake.fetch_tree, Recorder())
    assert sorted(os.listdir(stale)) == ["new"]
    assert sorted(os.listdir(stale.parent)) == ["train"]


def test_synthesise_failing_channel_writes_nothing(tmp_path):
    fake = FakeFetch(trees={"ref+s3://data/train/": [("a", b"1")]})
    with pytest.raises(ShimError) as caught:
        sagemaker.synthesise(layout_settings(tmp_path), {}, fake.fetch, fake.fetch_tree, Recorder())
    assert "ref+s3://data/test/" in caught.value.message()
    assert os.listdir(tmp_path) == []


def test_synthesise_rejects_escaping_object_names(tmp_path):
    fake = FakeFetch(trees={"ref+s3://d/": [("../../etc/passwd", b"x")]})
    with pytest.raises(ShimError) as caught:
        sagemaker.synthesise(Settings(sagemaker_root=str(tmp_path), channels={"c": "ref+s3://d/"}), {}, fake.fetch,
                             fake.fetch_tree, Recorder())
    assert "leaves the channel directory" in caught.value.message()
    assert not (tmp_path / "opt/ml/input/data/c").exists()
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("hosts,current,environ,expected_current,expected_hosts", [
    ((), None, {}, "algo-1", ["algo-1"]),
    (["algo-1", "algo-2", "algo-3"], None, {"JOB_COMPLETION_INDEX": "2"}, "algo-3", ["algo-1", "algo-2", "algo-3"]),
    (["algo-2", "algo-1"], "algo-2", {}, "algo-2", ["algo-1", "algo-2"]),
])
def test_resource_config_hosts(hosts, current, environ, expected_current, expected_hosts):
    config = sagemaker.resource_config(Settings(hosts=hosts, current_host=current), environ)
    assert (config["current_host"], config["hosts"]) == (expected_current, expected_hosts)


def test_resource_config_unknown_host():
    with pytest.raises(ShimError) as caught:
        sagemaker.resource_config(Settings(hosts=["algo-1", "algo-2"]), {"JOB_COMPLETION_INDEX": "5"})
    assert "algo-6 is not one of algo-1, algo-2" in caught.value.message()


def test_bad_channel_name(tmp_path):
    with pytest.raises(ShimError) as caught:
        sagemaker.synthesise(Settings(sagemaker_root=str(tmp_path), channels={"a b": "ref+s3://x/"}), {}, None, None,
                             Recorder())
    assert 'channel "a b"' in caught.value.message()


def test_cap_warnings_cite_the_api_limits(tmp_path):
    log = Recorder()
    hyperparameters = {**{f"k{i}": i for i in range(101)}, "big": "x" * 2501, "n" * 257: "1"}
    sagemaker.synthesise(Settings(sagemaker_root=str(tmp_path), hyperparameters=hyperparameters), {}, None, None,
                         log)
    text = " ".join(m for _, m in log.lines)
    assert "103 hyperparameters exceed SageMaker's cap of 100 keys" in text
    assert "1 hyperparameter names exceed SageMaker's 256-character key cap" in text
    assert "big exceed SageMaker's 2500-character value cap" in text
    assert "--hyperparameters-from ref+s3://" in text


def test_read_only_root_is_one_clear_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "opt").write_text("a file where a directory must go")
    with pytest.raises(ShimError) as caught:
        sagemaker.synthesise(Settings(sagemaker_root=str(ro)), {}, None, None, Recorder())
    message = caught.value.message()
    assert "\n" not in message and "mount a writable volume (emptyDir) at /opt/ml" in message


# -- after the run -------------------------------------------------------------------------

def test_failure_file_first_1024_bytes_on_a_character_boundary(tmp_path):
    reason = "é" * 600  # 1200 bytes; byte 1024 falls inside no character: 512 é fit exactly
    assert sagemaker.write_failure(str(tmp_path), "sagemaker-training", reason, Recorder()) is True
    data = (tmp_path / "opt/ml/output/failure").read_bytes()
    assert len(data) == 1024 and data.decode("utf-8") == "é" * 512
    odd = "a" + "é" * 600
    assert len(sagemaker.failure_text(odd)) == 1023  # never half a character


def test_failure_file_kept_when_the_algorithm_wrote_one(tmp_path):
    target = tmp_path / "opt/ml/output/failure"
    target.parent.mkdir(parents=True)
    target.write_text("CUDA out of memory")
    log = Recorder()
    assert sagemaker.write_failure(str(tmp_path), "sagemaker-training", "exit 1", log) is False
    assert target.read_text() == "CUDA out of memory"


def test_processing_gets_the_message_file(tmp_path):
    sagemaker.write_failure(str(tmp_path), "sagemaker-processing", "boom", Recorder())
    assert (tmp_path / "opt/ml/output/message").read_text() == "boom"


def test_env_cap_warning_counts_the_jobs_own_variables():
    service_links = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "REDIS_SERVICE_HOST": "10.0.0.2",
                     "REDIS_SERVICE_PORT": "6379", "REDIS_PORT": "tcp://10.0.0.2:6379",
                     "REDIS_PORT_6379_TCP_ADDR": "10.0.0.2", "PATH": "/bin", "HOSTNAME": "pod"}
    own = {f"APP_{i}": "x" for i in range(100)}
    assert sagemaker.cap_warnings({}, dict(service_links, **own)) == []
    text = " ".join(sagemaker.cap_warnings({}, dict(service_links, **own, EXTRA="1")))
    assert "101 environment variables exceed SageMaker's Environment cap (100 entries of 512 bytes)" in text
    assert "--env-from" in text
    text = " ".join(sagemaker.cap_warnings({}, {"BIG": "é" * 257, "SMALL": "x"}))
    assert "variables BIG (over 512 bytes)" in text and "é" not in text  # names, never values


def test_variables_the_kernel_would_refuse_are_named(tmp_path):
    write_hp(tmp_path, {"small": "x", "corpus": "w" * (sagemaker.MAX_ARG_STRLEN + 1)})
    with pytest.raises(ShimError) as caught:
        sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_env="HP_"), FakeFetch().fetch,
                         Recorder())
    message = caught.value.message()
    assert "HP_CORPUS" in message and "HP_SMALL" not in message and "www" not in message
    assert "--hyperparameters-file" in message
    # The same payload is fine as a file.
    out = tmp_path / "hp.json"
    sagemaker.expose(Settings(sagemaker_root=str(tmp_path), hyperparameters_file=str(out)), FakeFetch().fetch,
                     Recorder())
    assert len(json.loads(out.read_text())["corpus"]) == sagemaker.MAX_ARG_STRLEN + 1



def test_channel_failing_midway_leaves_nothing(tmp_path):
    def broken():
        yield "a.csv", b"1"
        raise ShimError("fetch", "channel ref+s3://d/b/", "aws-s3: HTTP 500 InternalError", "retry")

    trees = {"ref+s3://d/a/": lambda: iter([("x", b"1")]), "ref+s3://d/b/": broken}
    settings = Settings(sagemaker_root=str(tmp_path), channels={"a": "ref+s3://d/a/", "b": "ref+s3://d/b/"})
    with pytest.raises(ShimError) as caught:
        sagemaker.synthesise(settings, {}, None, lambda ref: trees[ref](), Recorder())
    assert "HTTP 500" in caught.value.message()
    assert os.listdir(tmp_path) == []  # channel a was staged, then removed with the dirs made for it


def test_restart_keeps_the_old_channel_when_the_new_fetch_fails(tmp_path):
    old = tmp_path / "opt/ml/input/data/a"
    old.mkdir(parents=True)
    (old / "kept").write_bytes(b"old")

    def broken():
        raise ShimError("fetch", "channel ref+s3://d/a/", "aws-s3: HTTP 403 AccessDenied", "check")
        yield  # a generator

    with pytest.raises(ShimError):
        sagemaker.synthesise(Settings(sagemaker_root=str(tmp_path), channels={"a": "ref+s3://d/a/"}), {}, None,
                             lambda ref: broken(), Recorder())
    assert sorted(os.listdir(old.parent)) == ["a"] and (old / "kept").read_bytes() == b"old"
