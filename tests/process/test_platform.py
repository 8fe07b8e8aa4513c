"""Real shim runs against a temp SageMaker root: both directions of the contract,
`shim detect`, the train/serve first word, and the writers' errors as another user
and on a read-only mount."""

import json
import os
import subprocess
import sys

import pytest

from support import REPO, base_env, require_tool, run

PRINT_ENV = [sys.executable, "-c",
             ("import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
              "if k.startswith(('HP_', 'SHIM_RUNTIME', 'TRAINING_JOB_NAME'))}))")]


def write_json(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return str(path)


def test_detect_subcommand(tmp_path):
    r = run(["detect", "--root", str(tmp_path)], env=base_env(CLOUD_RUN_JOB="j"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"runtime": "cloud-run-job", "source": "detected",
                                    "evidence": ["env CLOUD_RUN_JOB is set"], "also": []}
    r = run(["detect", "--runtime", "nope"])
    assert r.returncode == 125
    assert r.stderr.decode().count("\n") == 1 and b'unknown runtime "nope"' in r.stderr


def test_on_sagemaker_hyperparameters_reach_env_and_file(tmp_path):
    """SageMaker runs `IMAGE train`: the commands map picks the delegate, hyperparameters
    become the variables and the config file the Kubernetes job had."""
    root = tmp_path / "sm"
    write_json(root / "opt/ml/input/config/hyperparameters.json",
               {"learning-rate": "0.01", "sagemaker_program": '"train.py"', "epochs": "3"})
    params = tmp_path / "etc/app/params.json"
    config = write_json(tmp_path / "shim.json", {
        "commands": {"train": PRINT_ENV},
        "platform": {"hyperparameters_env": "HP_", "hyperparameters_file": str(params)},
    })
    r = run(["--config", config, "--sagemaker-root", str(root), "train"],
            env=base_env(TRAINING_JOB_NAME="job-1", TRAINING_JOB_ARN="arn:aws:sagemaker:x"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"HP_LEARNING_RATE": "0.01", "HP_SAGEMAKER_PROGRAM": "train.py",
                                    "HP_EPOCHS": "3", "SHIM_RUNTIME": "sagemaker-training",
                                    "TRAINING_JOB_NAME": "job-1"}
    assert json.loads(params.read_text()) == {"learning-rate": 0.01, "sagemaker_program": "train.py",
                                              "epochs": 3}


def test_on_kubernetes_the_layout_is_synthesised_and_failure_written(tmp_path):
    root, data = tmp_path / "root", tmp_path / "data"
    (data / "train/sub").mkdir(parents=True)
    (data / "train/a.csv").write_text("1,2\n")
    (data / "train/sub/b.csv").write_text("3,4\n")
    bulk = write_json(tmp_path / "hp.json", {f"k{i}": i for i in range(150)})
    script = (
        "import json, os, sys\n"
        f"r = {str(root)!r} + '/opt/ml'\n"
        "hp = json.load(open(r + '/input/config/hyperparameters.json'))\n"
        "rc = json.load(open(r + '/input/config/resourceconfig.json'))\n"
        "dc = json.load(open(r + '/input/config/inputdataconfig.json'))\n"
        "b = open(r + '/input/data/train/sub/b.csv').read()\n"
        "print(json.dumps([hp['lr'], hp['k149'], len(hp), rc, sorted(dc), b, os.environ['SHIM_RUNTIME']]))\n"
        "sys.exit(3)\n"
    )
    r = run(["--sagemaker-layout", "--sagemaker-root", str(root), "--hyperparameter", "lr=0.1",
             "--hyperparameters-from", f"ref+file://{bulk}", "--channel", f"train=ref+file://{data}/train",
             "--sagemaker-host", "algo-1", "--sagemaker-host", "algo-2",
             "--", sys.executable, "-c", script],
            env=base_env(KUBERNETES_SERVICE_HOST="10.0.0.1", JOB_COMPLETION_INDEX="1"))
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout) == ["0.1", "149", 151,
                                    {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"],
                                     "network_interface_name": "eth0"},
                                    ["train"], "3,4\n", "kubernetes"]
    assert (root / "opt/ml/output/failure").read_text() == "the delegate exited with code 3"
    assert b"151 hyperparameters exceed SageMaker's cap of 100 keys" in r.stderr


def test_success_writes_no_failure_and_own_failure_is_kept(tmp_path):
    root = tmp_path / "root"
    r = run(["--sagemaker-layout", "--sagemaker-root", str(root), "--", "true"], env=base_env())
    assert r.returncode == 0, r.stderr
    assert not (root / "opt/ml/output/failure").exists()
    own = f"open({str(root)!r} + '/opt/ml/output/failure', 'w').write('CUDA OOM'); raise SystemExit(1)"
    r = run(["--sagemaker-layout", "--sagemaker-root", str(root), "--", sys.executable, "-c", own],
            env=base_env())
    assert r.returncode == 1
    assert (root / "opt/ml/output/failure").read_text() == "CUDA OOM"


def test_shim_error_before_the_delegate_is_the_failure_reason(tmp_path):
    root = tmp_path / "root"
    r = run(["--sagemaker-layout", "--sagemaker-root", str(root), "--", "no-such-program-xyz"],
            env=base_env())
    assert r.returncode == 127
    reason = (root / "opt/ml/output/failure").read_text()
    assert reason.startswith("shim: ") and "no-such-program-xyz" in reason


def test_missing_channel_fails_closed(tmp_path):
    root = tmp_path / "root"
    r = run(["--sagemaker-layout", "--sagemaker-root", str(root), "--channel",
             f"train=ref+file://{tmp_path}/absent", "--", "touch", str(tmp_path / "ran")], env=base_env())
    assert r.returncode == 118
    assert not (tmp_path / "ran").exists()
    assert not (root / "opt/ml/input").exists()
    assert r.stderr.decode().startswith("shim: fetch ref+file://")


@pytest.fixture
def public_dir():
    """A root-owned 0755 directory others can reach (pytest's own tmp is 0700)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp()
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_layout_under_an_unwritable_root_is_one_line(public_dir):
    require_tool("setpriv")
    outer = public_dir
    root = os.path.join(outer, "locked")
    os.mkdir(root, 0o755)
    cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
           sys.executable, "-m", "shim", "--sagemaker-layout", "--sagemaker-root", str(root), "--", "true"]
    r = subprocess.run(cmd, env=base_env(), capture_output=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 118
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0], lines
    assert "mount a writable volume (emptyDir) at /opt/ml" in lines[0]
    assert os.listdir(root) == []


WRITERS = (
    "import sys\n"
    "from shim.sources import targets\n"
    "from shim.errors import ShimError\n"
    "try:\n"
    "    getattr(targets, sys.argv[1])(sys.argv[2], *([{'k': b'v'}] if sys.argv[1] == 'write_dir' else [b'v']))\n"
    "except ShimError as err:\n"
    "    print(err.message()); sys.exit(err.code)\n"
)


@pytest.mark.parametrize("writer", ["write_file", "write_dir"])
def test_writers_as_another_user(public_dir, writer):
    require_tool("setpriv")
    target = os.path.join(public_dir, "x", "secret")
    cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
           sys.executable, "-c", WRITERS, writer, target]
    r = subprocess.run(cmd, env=base_env(), capture_output=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 118, r.stderr
    out = r.stdout.decode()
    assert out.count("\n") == 1 and "permission denied" in out and "run shim as a user" in out
    assert os.listdir(public_dir) == []


@pytest.mark.parametrize("writer", ["write_file", "write_dir"])
def test_writers_on_a_read_only_mount(tmp_path, writer):
    require_tool("unshare")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -c \"$0\" {writer} {ro}/sub/secret"
    r = subprocess.run(["unshare", "--mount", "sh", "-c", script, WRITERS], env=base_env(),
                       capture_output=True, timeout=60, cwd=REPO, check=False)
    if b"permission denied" in r.stderr.lower() and b"mount" in r.stderr:
        pytest.skip("mounting needs CAP_SYS_ADMIN")  # the machine's root has it; CI runs as root
    assert r.returncode == 118, r.stderr
    out = r.stdout.decode()
    assert "read-only file system" in out and "mount a writable volume" in out


def test_write_file_owner_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    script = ("from shim.sources import targets; import sys; "
              "targets.write_file(sys.argv[1], b'v', uid=65534, gid=65534)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "s")], env=base_env(), check=True,
                   cwd=REPO, timeout=60)
    st = (tmp_path / "s").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o400)


def test_megabytes_of_hyperparameters_through_a_channel(tmp_path):
    """The seed's workaround: the job uploads the payload to S3 and SageMaker downloads it
    into a channel; --hyperparameters-from reads it from there, under the job's own keys."""
    root = tmp_path / "sm"
    write_json(root / "opt/ml/input/config/hyperparameters.json", {"epochs": "7"})
    bulk = {f"feature_{i}": "v" * 2000 for i in range(2500)}  # ~5 MB, 2500 keys
    bulk["epochs"] = 1
    channel = write_json(root / "opt/ml/input/data/hyperparameters/hp.json", bulk)
    params = tmp_path / "params.json"
    script = (f"import json, os; p = json.load(open({str(params)!r})); "
              "print(len(p), p['epochs'], len(p['feature_2499']))")
    r = run(["--sagemaker-root", str(root), "--hyperparameters-from", f"ref+file://{channel}",
             "--hyperparameters-file", str(params), "--", sys.executable, "-c", script],
            env=base_env(TRAINING_JOB_ARN="arn:aws:sagemaker:x"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"2501", b"7", b"2000"]
    # As variables the same payload cannot be exec'd: one clear line before anything runs.
    r = run(["--sagemaker-root", str(root), "--hyperparameters-from", f"ref+file://{channel}",
             "--hyperparameters-env", "HP_", "--", "touch", str(tmp_path / "ran")],
            env=base_env(TRAINING_JOB_ARN="arn:aws:sagemaker:x"))
    assert r.returncode == 125
    assert r.stderr.count(b"\n") == 1 and b"over ARG_MAX" in r.stderr
    assert not (tmp_path / "ran").exists()

