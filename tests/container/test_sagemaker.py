"""The SageMaker round trip in real containers (issue 10).

Two images built here on the local debian-servers base (nothing is pulled), both with
shim as ENTRYPOINT, CMD ["train"] and a config file whose `commands` map turns
SageMaker's leading word into the delegate:

* sm-style: code written for SageMaker (reads /opt/ml/input/config/*.json and
  /opt/ml/input/data/<channel>, writes /opt/ml/model). Run as Kubernetes runs a pod:
  `args: [train]`, read-only root, uid 65534, an emptyDir (tmpfs) at /opt/ml, the
  kubelet's KUBERNETES_SERVICE_HOST, a data volume; and from real Pod specs through
  `podman kube play`. shim's `kubernetes` profile synthesises the layout.
* k8s-style: code written for Kubernetes (reads HP_* variables and a ConfigMap-style
  /etc/app/params.json). Run as SageMaker runs a training job: `docker run IMAGE train`
  with /opt/ml laid out by the platform and TRAINING_JOB_NAME/ARN set. shim's
  `sagemaker` profile exposes the hyperparameters in the old shape.

A failing run leaves its reason in /opt/ml/output/failure in both directions, and
`IMAGE serve` (SageMaker hosting) picks commands.serve with runtime sagemaker-endpoint.
Channels come from `ref+file://` (a mounted volume) here: the S3 prefix walk belongs
to the sources layer (see the report; shim/run/runtime.py marks the seam).
"""

import json
import os
import subprocess
import uuid

from support import require_tool

# The sm-style image's config: off SageMaker (the `kubernetes` profile), lay /opt/ml out.
SM_STYLE_CONFIG = {
    "commands": {"train": ["/app/train"]},
    "profiles": {"kubernetes": {"platform": {
        "sagemaker_layout": True,
        "channels": {"training": "ref+file:///data/training"},
        "hosts": ["algo-1"],
    }}},
}
# The k8s-style image's config: on SageMaker, hyperparameters in the shape the pod had.
K8S_STYLE_CONFIG = {
    "commands": {"train": ["/app/train"],
                 "serve": ["python3", "-c", "import os, sys; print(os.environ['SHIM_RUNTIME'], sys.argv[1:])"]},
    "profiles": {"sagemaker": {"platform": {"hyperparameters_env": "HP_",
                                            "hyperparameters_file": "/etc/app/params.json"}}},
}

SM_STYLE_TRAIN = r'''#!/usr/bin/python3
"""A SageMaker-style training program: everything from /opt/ml."""
import json, os, sys
ml = "/opt/ml"
hp = json.load(open(f"{ml}/input/config/hyperparameters.json"))
rc = json.load(open(f"{ml}/input/config/resourceconfig.json"))
channels = json.load(open(f"{ml}/input/config/inputdataconfig.json"))
rows = sum(len(open(os.path.join(d, f)).read().splitlines())
           for d, _, fs in os.walk(f"{ml}/input/data/training") for f in fs)
if hp.get("fail") == "yes":
    sys.exit(2)
with open(f"{ml}/model/model.json", "w") as out:
    json.dump({"epochs": int(hp["epochs"]), "host": rc["current_host"], "hosts": rc["hosts"],
               "channels": sorted(channels), "rows": rows, "runtime": os.environ["SHIM_RUNTIME"],
               "argv0": sys.argv[0]}, out)
'''

K8S_STYLE_TRAIN = r'''#!/usr/bin/python3
"""A Kubernetes-style training program: env vars and a ConfigMap-mounted file."""
import json, os, sys
params = json.load(open("/etc/app/params.json"))
if os.environ["HP_FAIL"] == "yes":
    print("giving up", file=sys.stderr)
    sys.exit(4)
with open("/opt/ml/model/model.json", "w") as out:
    json.dump({"epochs": int(os.environ["HP_EPOCHS"]), "lr": params["learning-rate"],
               "layers": params["layers"], "runtime": os.environ["SHIM_RUNTIME"],
               "job": os.environ["TRAINING_JOB_NAME"]}, out)
'''


def build(servers_image, entrypoint, name, program, config, tmp_path):
    """Build an image with shim as ENTRYPOINT; returns (tag, podman run args that provide shim)."""
    require_tool("podman")
    mounts, prefix = entrypoint
    ctx = tmp_path / f"ctx-{name}"
    ctx.mkdir()
    (ctx / "train").write_text(program)
    (ctx / "shim.json").write_text(json.dumps(config))
    entrypoint = json.dumps(prefix + ["--config", "/etc/shim/shim.json"])
    (ctx / "Containerfile").write_text(
        f"FROM {servers_image}\n"
        "COPY train /app/train\n"
        "COPY shim.json /etc/shim/shim.json\n"
        "RUN chmod 0755 /app/train && mkdir -p /etc/app\n"
        f"ENTRYPOINT {entrypoint}\n"
        'CMD ["train"]\n')
    tag = f"localhost/shim-test/{name}-{prefix[0].strip('/').replace('/', '-')}:latest"
    proc = subprocess.run(["podman", "build", "--isolation=chroot", "-q", "-t", tag, str(ctx)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return tag, mounts


def public(path):
    """A host directory another uid (65534) can write through a bind mount."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    return str(path)


def test_sagemaker_style_image_runs_as_a_kubernetes_pod(servers_image, shim_entrypoint, tmp_path, new_container):
    tag, mounts = build(servers_image, shim_entrypoint, "sm-style", SM_STYLE_TRAIN, SM_STYLE_CONFIG, tmp_path)
    data = tmp_path / "data/training"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("1,2\n3,4\n")
    (data / "part-1.csv").write_text("5,6\n")
    model, output = public(tmp_path / "model"), public(tmp_path / "output")
    tmp_path.chmod(0o755)

    def pod(*hyperparameters):
        box = new_container()
        # What the kubelet gives a pod: its service variables, args [train], securityContext
        # (read-only root, uid 65534), an emptyDir at /opt/ml, volumes.
        argv = ["run", "--name", box.name, *mounts, "--read-only", "--read-only-tmpfs=false",
                "--user", "65534:65534", "-e", "KUBERNETES_SERVICE_HOST=10.96.0.1",
                "-e", "KUBERNETES_SERVICE_PORT=443", "--tmpfs", "/opt/ml:rw,mode=1777",
                "-v", f"{model}:/opt/ml/model", "-v", f"{output}:/opt/ml/output",
                "-v", f"{tmp_path / 'data'}:/data:ro",
                *[a for hp in hyperparameters for a in ("-e", f"SHIM_HYPERPARAMETERS={hp}")],
                tag, "train"]
        return box.podman(*argv, check=False, timeout=120)

    proc = pod('{"epochs": "3"}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "model/model.json").read_text()) == {
        "epochs": 3, "host": "algo-1", "hosts": ["algo-1"], "channels": ["training"], "rows": 3,
        "runtime": "kubernetes", "argv0": "/app/train"}
    assert not (tmp_path / "output/failure").exists()

    proc = pod('{"epochs": "3", "fail": "yes"}')
    assert proc.returncode == 2, proc.stderr
    assert (tmp_path / "output/failure").read_text() == "the delegate exited with code 2"


def test_kubernetes_style_image_runs_as_a_sagemaker_training_job(servers_image, shim_entrypoint, tmp_path,
                                                                 new_container):
    tag, mounts = build(servers_image, shim_entrypoint, "k8s-style", K8S_STYLE_TRAIN, K8S_STYLE_CONFIG,
                       tmp_path)
    ml = tmp_path / "opt_ml"
    config = ml / "input/config"
    config.mkdir(parents=True)
    (ml / "model").mkdir()
    (ml / "output").mkdir()
    # What SageMaker writes: string values (the SDK JSON-encodes non-strings).
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))

    def job(hyperparameters):
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        box = new_container()
        # `docker run IMAGE train` with the platform's variables and /opt/ml.
        argv = ["run", "--name", box.name, *mounts, "-v", f"{ml}:/opt/ml",
                "-e", "TRAINING_JOB_NAME=k8s-style-1",
                "-e", "TRAINING_JOB_ARN=arn:aws:sagemaker:us-east-1:123456789012:training-job/k8s-style-1",
                tag, "train"]
        return box.podman(*argv, check=False, timeout=120)

    proc = job({"epochs": "5", "learning-rate": "0.01", "layers": "[64, 32]", "fail": '"no"'})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((ml / "model/model.json").read_text()) == {
        "epochs": 5, "lr": 0.01, "layers": [64, 32], "runtime": "sagemaker-training", "job": "k8s-style-1"}
    assert not (ml / "output/failure").exists()

    proc = job({"epochs": "5", "learning-rate": "0.01", "layers": "[]", "fail": "yes"})
    assert proc.returncode == 4
    assert "giving up" in proc.stderr
    assert (ml / "output/failure").read_text() == "the delegate exited with code 4"


def test_same_k8s_style_image_runs_unchanged_as_a_pod(servers_image, shim_entrypoint, tmp_path, new_container):
    """The other half of "unchanged": under Kubernetes the k8s-style image gets its variables
    and ConfigMap from the pod spec, and shim adds nothing but SHIM_RUNTIME."""
    tag, mounts = build(servers_image, shim_entrypoint, "k8s-style", K8S_STYLE_TRAIN, K8S_STYLE_CONFIG,
                       tmp_path)
    cm = tmp_path / "configmap"
    cm.mkdir()
    (cm / "params.json").write_text(json.dumps({"learning-rate": 0.1, "layers": [8]}))
    model = public(tmp_path / "model")
    box = new_container()
    proc = box.podman("run", "--name", box.name, *mounts, "-e", "KUBERNETES_SERVICE_HOST=10.96.0.1",
                      "-e", "HP_EPOCHS=2", "-e", "HP_FAIL=no", "-e", "TRAINING_JOB_NAME=pod-1",
                      "-v", f"{cm}:/etc/app:ro", "-v", f"{model}:/opt/ml/model", tag, "train",
                      check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "model/model.json").read_text()) == {
        "epochs": 2, "lr": 0.1, "layers": [8], "runtime": "kubernetes", "job": "pod-1"}


def test_serve_as_a_sagemaker_endpoint_starts_it(servers_image, shim_entrypoint, tmp_path, new_container):
    """Hosting runs `docker run IMAGE serve` with the model in /opt/ml/model: `serve` picks
    commands.serve and the runtime is sagemaker-endpoint; extra words are passed on."""
    tag, mounts = build(servers_image, shim_entrypoint, "k8s-style", K8S_STYLE_TRAIN, K8S_STYLE_CONFIG,
                        tmp_path)
    (tmp_path / "model").mkdir()
    box = new_container()
    proc = box.podman("run", "--name", box.name, *mounts, "-v", f"{tmp_path / 'model'}:/opt/ml/model:ro",
                      tag, "serve", "--workers", "2", check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sagemaker-endpoint ['--workers', '2']"



def pod_spec(name, tag, mounts, env, volumes):
    """A Pod as the API server would hand it to a kubelet: args [train], read-only root, an
    emptyDir at /opt/ml, hostPath stand-ins for the data and output volumes. JSON is YAML."""
    env = dict(env, KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443")
    mounts_spec, volume_spec = [{"name": "ml", "mountPath": "/opt/ml"}], [{"name": "ml", "emptyDir": {}}]
    for flag, value in zip(mounts[::2], mounts[1::2], strict=True):  # the shim under test: -v HOST:CTR[:ro], -e K=V
        if flag == "-e":
            env.update([value.split("=", 1)])
        else:
            volumes = dict(volumes, **{value.split(":")[1]: value.split(":")[0]})
    for i, (inside, outside) in enumerate(sorted(volumes.items())):
        mounts_spec.append({"name": f"v{i}", "mountPath": inside})
        volume_spec.append({"name": f"v{i}", "hostPath": {"path": outside}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "volumes": volume_spec, "containers": [{
                "name": "train", "image": tag, "args": ["train"],
                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                "securityContext": {"readOnlyRootFilesystem": True}, "volumeMounts": mounts_spec}]}}


def test_sagemaker_style_image_in_podman_kube_play(servers_image, shim_entrypoint, tmp_path):
    """The same image from real Pod specs (`podman kube play`), a good and a failing run."""
    require_tool("catatonit")  # podman builds its pause image from it
    tag, mounts = build(servers_image, shim_entrypoint, "sm-style", SM_STYLE_TRAIN, SM_STYLE_CONFIG, tmp_path)
    data = tmp_path / "data/training"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("1,2\n")
    runs = {}
    for outcome, hyperparameters in (("ok", {"epochs": "4"}), ("fail", {"epochs": "4", "fail": "yes"})):
        out = tmp_path / outcome
        volumes = {"/data": str(tmp_path / "data"), "/opt/ml/model": public(out / "model"),
                   "/opt/ml/output": public(out / "output")}
        name = f"shim-sm-{uuid.uuid4().hex[:8]}"
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(json.dumps(pod_spec(name, tag, mounts, {"SHIM_HYPERPARAMETERS": json.dumps(hyperparameters)},
                                            volumes)))
        try:
            subprocess.run(["podman", "kube", "play", str(spec)], check=True, capture_output=True, timeout=300,
                           stdin=subprocess.DEVNULL)
            container = f"{name}-train"  # podman names a pod's containers POD-CONTAINER
            waited = subprocess.run(["podman", "wait", container], capture_output=True, text=True, timeout=120,
                                    check=True, stdin=subprocess.DEVNULL)
            logs = subprocess.run(["podman", "logs", container], capture_output=True, text=True, timeout=60,
                                  check=False, stdin=subprocess.DEVNULL)
            runs[outcome] = (int(waited.stdout.split()[-1]), logs.stdout + logs.stderr, out)
        finally:
            subprocess.run(["podman", "kube", "down", str(spec)], capture_output=True, timeout=120, check=False,
                           stdin=subprocess.DEVNULL)
    code, logs, out = runs["ok"]
    assert code == 0, logs
    assert json.loads((out / "model/model.json").read_text())["epochs"] == 4
    code, logs, out = runs["fail"]
    assert code == 2, logs
    assert (out / "output/failure").read_text() == "the delegate exited with code 2"
