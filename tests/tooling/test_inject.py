"""`shim k8s inject`: every kind of the corpus, $(VAR) meaning, idempotence, removal, comments, schemas."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from support import REPO
from tooling_support import CORPUS, k8s_expand, shim_tools, write_layout

TOOLS = "localhost/shim-tools:test"
APP_IMAGE = {"Entrypoint": ["/app/entry", "--home=$HOME", "--cost=$(NOT_K8S)"], "Cmd": ["serve", "--all"]}
# Variables defined in the containers' environments (values differ from the names, so expansion shows).
ENV = {"PORT": "8080", "DB_URL": "postgres://db", "POD_NAME": "api-7d9f", "NODE_NAME": "node-1",
       "TENANT": "acme", "DATE": "2026-11-21", "LEVEL": "3", "HOME": "/root", "NOT_K8S": "x"}
FILES = sorted(p.name for p in CORPUS.iterdir())


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout") / "app"
    write_layout(root, {"amd64": APP_IMAGE, "arm64": APP_IMAGE})
    return root


def inject(*args, layout=None, input=None, cache=None):
    extra = ["--image-source", f"registry.example/app:1=oci:{layout}"] if layout else []
    return shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", cache or "", *extra, *args,
                      input=input)


def templates(docs):
    for doc in docs:
        if doc.get("kind") == "List":
            yield from templates(doc["items"])
        elif doc.get("kind") == "Pod":
            yield doc
        elif doc.get("kind") == "PodTemplate":
            yield doc["template"]
        elif doc.get("kind") == "CronJob":
            yield doc["spec"]["jobTemplate"]["spec"]["template"]
        elif "template" in (doc.get("spec") or {}):
            yield doc["spec"]["template"]


def load(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def expected_run(container):
    """The argv Kubernetes runs for the original container: pod words expanded, image words not."""
    if container.get("command"):
        return [k8s_expand(w, ENV) for w in container["command"] + (container.get("args") or [])]
    args = [k8s_expand(w, ENV) for w in container.get("args") or []]
    return APP_IMAGE["Entrypoint"] + (args if args else APP_IMAGE["Cmd"])


@pytest.mark.parametrize("name", FILES)
def test_each_kind_runs_the_same_command_behind_shim(name, layout):
    proc = inject("--init-containers", "-f", CORPUS / name, layout=layout)
    assert proc.returncode == 0, proc.stderr
    before, after = load((CORPUS / name).read_text()), load(proc.stdout)
    pairs = list(zip(templates(before), templates(after), strict=True))
    assert pairs, name
    for old, new in pairs:
        inits = new["spec"]["initContainers"]
        assert inits[0]["name"] == "install-shim" and inits[0]["image"] == TOOLS
        assert inits[0]["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "shim", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}} in new["spec"]["volumes"]
        olds = old["spec"].get("initContainers", []) + old["spec"]["containers"]
        news = [c for c in inits if c["name"] != "install-shim"] + new["spec"]["containers"]
        for o, n in zip(olds, news, strict=True):
            assert n["command"] == ["/shim/shim"]
            cut = n["args"].index("--")
            assert [k8s_expand(w, ENV) for w in n["args"][cut + 1:]] == expected_run(o), (name, o["name"])
            assert {"name": "shim", "mountPath": "/shim", "readOnly": True} in n["volumeMounts"]
            assert n.get("securityContext") == o.get("securityContext")
        assert new["spec"].get("securityContext") == old["spec"].get("securityContext")


def test_image_words_are_escaped_and_pod_words_are_not(layout):
    out = load(inject("-f", CORPUS / "deployment.yaml", layout=layout).stdout)[0]
    api, worker = out["spec"]["template"]["spec"]["containers"]
    # args replace CMD, not ENTRYPOINT; ENTRYPOINT words never met Kubernetes' expansion, so `$` is doubled.
    assert api["args"] == ["--", "/app/entry", "--home=$$HOME", "--cost=$$(NOT_K8S)", "serve", "--name=$(POD_NAME)"]
    assert worker["args"] == ["--", "/app/entry", "--home=$$HOME", "--cost=$$(NOT_K8S)", "serve", "--all"]


@pytest.mark.parametrize("name", FILES)
def test_injecting_twice_changes_nothing_and_remove_restores(name, layout, tmp_path):
    once = inject("--init-containers", "-f", CORPUS / name, layout=layout)
    twice = inject("--init-containers", "-f", "-", layout=layout, input=once.stdout)
    assert twice.returncode == 0 and twice.stdout == once.stdout
    removed = shim_tools("k8s", "inject", "--remove", "-f", "-", input=once.stdout)
    assert removed.returncode == 0, removed.stderr
    assert load(removed.stdout) == load((CORPUS / name).read_text())


def test_comments_and_key_order_survive(layout):
    text = (CORPUS / "pod-multi.yaml").read_text()
    out = inject("-f", CORPUS / "pod-multi.yaml", layout=layout).stdout
    for comment in ("# A pod with an init container", "# Kubernetes expands DB_URL", "# shell form: sh -c"):
        assert comment in out
    keys = [line.split(":")[0].strip() for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert [line.split(":")[0] for line in out.splitlines() if line and not line.startswith((" ", "#"))] == keys


def test_json_in_json_out_and_other_kinds_pass_through_with_a_note(layout):
    proc = inject("-f", CORPUS / "list.json", layout=layout)
    doc = json.loads(proc.stdout)
    assert doc["items"][1] == json.loads((CORPUS / "list.json").read_text())["items"][1]
    proc = inject("-f", CORPUS / "multi-doc.yaml", layout=layout)
    assert "ConfigMap settings passed through unchanged" in proc.stderr
    assert load(proc.stdout)[0] == load((CORPUS / "multi-doc.yaml").read_text())[0]


def test_container_selection_and_init_containers_opt_in(layout):
    out = load(inject("--container", "logs", "-f", CORPUS / "pod-multi.yaml", layout=layout).stdout)[0]
    spec = out["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["install-shim", "migrate"]
    assert spec["initContainers"][1]["command"][0] == "/app/migrate"  # init containers are opt-in
    app, logs = spec["containers"]
    assert app["command"] == ["/app/server"] and logs["command"] == ["/shim/shim"]


def test_shim_options_go_before_the_separator(layout):
    out = load(inject("--shim-arg=--grace=30s", "--shim-arg=--rewrite=TERM:QUIT", "-f", CORPUS / "replicaset.yaml",
                      layout=layout).stdout)[0]
    c = out["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["--grace=30s", "--rewrite=TERM:QUIT", "--", "redis-server", "--save", ""]


def test_in_pod_lookup_passes_a_platform_map_the_runtime_understands(tmp_path):
    from shim.run.delegate import from_image

    multi = {"amd64": {"Entrypoint": ["/bin/app-amd64"], "Cmd": ["--x=$HOME"]},
             "arm64": {"Entrypoint": ["/bin/app-arm64"], "Cmd": ["--y"]}}
    write_layout(tmp_path / "m", multi)
    doc = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
           "  - {name: a, image: reg.example/m:1}\n")
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", "", "--lookup", "in-pod",
                      "--image-source", f"reg.example/m:1=oci:{tmp_path / 'm'}", input=doc)
    assert proc.returncode == 0, proc.stderr
    args = load(proc.stdout)[0]["spec"]["containers"][0]["args"]
    assert args[0] == "--image-entrypoint" and "--" not in args
    spec = json.loads(k8s_expand(args[1], {}))  # what the container receives
    assert from_image(spec, "x86_64") == ["/bin/app-amd64", "--x=$HOME"]
    assert from_image(spec, "aarch64") == ["/bin/app-arm64", "--y"]
    # args replace each platform's CMD, never its ENTRYPOINT; removal gives the args back.
    with_args = doc.replace("image: reg.example/m:1}", "image: reg.example/m:1, args: [--z, $(N)]}")
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", "", "--lookup", "in-pod",
                      "--image-source", f"reg.example/m:1=oci:{tmp_path / 'm'}", input=with_args)
    args = load(proc.stdout)[0]["spec"]["containers"][0]["args"]
    spec = json.loads(k8s_expand(args[1], {"N": "7"}))
    assert from_image(spec, "aarch64") == ["/bin/app-arm64", "--z", "7"]
    removed = shim_tools("k8s", "inject", "--remove", input=proc.stdout)
    assert load(removed.stdout) == load(with_args)
    # Without in-pod, a command that differs per platform needs a choice.
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", "",
                      "--image-source", f"reg.example/m:1=oci:{tmp_path / 'm'}", input=doc)
    assert proc.returncode == 125 and "different command on each platform" in proc.stderr
    assert "--lookup in-pod" in proc.stderr and proc.stdout == ""
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--cache-dir", "", "--platform", "linux/arm64",
                      "--image-source", f"reg.example/m:1=oci:{tmp_path / 'm'}", input=doc)
    assert load(proc.stdout)[0]["spec"]["containers"][0]["args"] == ["--", "/bin/app-arm64", "--y"]


def test_pvc_mode_mounts_the_versioned_claim_read_only(layout):
    proc = shim_tools("k8s", "inject", "--mode", "pvc", "--version", "0.1.0-0123456789ab", "-f",
                      CORPUS / "replicaset.yaml")
    spec = load(proc.stdout)[0]["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "shim", "persistentVolumeClaim": {"claimName": "shim-tools", "readOnly": True}}]
    assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert "initContainers" not in spec
    assert spec["containers"][0]["command"] == ["/shim/0.1.0-0123456789ab/shim-linux-amd64"]
    removed = shim_tools("k8s", "inject", "--remove", "-f", "-", input=proc.stdout)
    assert load(removed.stdout) == load((CORPUS / "replicaset.yaml").read_text())


def test_opt_out_annotation_is_respected():
    doc = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {shim.dev/inject: \"false\"}\n"
           "spec:\n  containers:\n  - {name: a, image: x, command: [a]}\n")
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, input=doc)
    assert load(proc.stdout) == load(doc) and "shim.dev/inject" in proc.stderr


def test_output_validates_against_the_kubernetes_schemas(layout, tmp_path):
    validate = shutil.which("kubernetes-validate", path=os.path.dirname(sys.executable))
    assert validate, "kubernetes-validate is in the dev extra"
    outs = []
    for name in FILES:
        out = tmp_path / (name.rsplit(".", 1)[0] + ".yaml")
        out.write_text(yaml.safe_dump_all(load(inject("--init-containers", "-f", CORPUS / name,
                                                      layout=layout).stdout)))
        outs.append(out)
    proc = subprocess.run([validate, "--strict", *outs], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- bad input ---------------------------------------------------------------------------------


def test_invalid_yaml_names_line_and_column():
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, input="kind: Pod\nspec: [a, b\nx: y\n")
    assert proc.returncode == 125
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("shim: parse <stdin>:") and "invalid YAML" in line
    assert "<stdin>:3:" in line or "<stdin>:2:" in line


def test_in_place_is_atomic_and_all_or_nothing(layout, tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    shutil.copy(CORPUS / "replicaset.yaml", good)
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: "
                   "localhost/shimtools-missing:1}\n")
    before = (good.read_text(), bad.read_text())
    proc = inject("--in-place", "-f", good, "-f", bad, layout=layout)
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1, proc.stderr
    assert "localhost/shimtools-missing:1" in proc.stderr  # looked up locally: no network
    assert (good.read_text(), bad.read_text()) == before
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml", "good.yaml"]  # no temp files left
    proc = inject("--in-place", "-f", good, layout=layout)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "/shim/shim" in good.read_text()


def test_no_command_and_lookup_off_is_a_one_line_error():
    doc = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x}\n"
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off", input=doc)
    assert proc.returncode == 125 and proc.stdout == ""
    assert proc.stderr == ("shim: inject container a of Pod p: has no command, and image lookup is off; set the "
                           "container's command, or drop --lookup off so the image's ENTRYPOINT is read\n")


def test_missing_tools_image_is_a_usage_error():
    proc = shim_tools("k8s", "inject", "-f", CORPUS / "job.yaml")
    assert proc.returncode == 125 and "--tools-image" in proc.stderr


def test_a_directory_and_an_unknown_container_name(layout, tmp_path):
    for name in ("job.yaml", "cronjob.yaml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a manifest")
    proc = inject("--container", "nope", "--container", "backup", "-f", tmp_path, layout=layout)
    docs = load(proc.stdout)
    assert [d["kind"] for d in docs] == ["CronJob", "Job"]  # sorted, .txt skipped
    assert "no container named nope in the input" in proc.stderr
    assert docs[1]["spec"]["template"]["spec"]["containers"][0]["command"] == CRON_JOB_UNTOUCHED


CRON_JOB_UNTOUCHED = ["/bin/sh", "-c", "set -e\necho \"started for $(TENANT)\"   # Kubernetes expands TENANT\n"
                      "echo \"shell var: $HOME\"\n"]


def test_a_hand_written_shim_container_gets_the_volume_and_keeps_it_on_remove():
    doc = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
           "  - {name: a, image: x, command: [/shim/shim, --, /app]}\n  - {name: b, image: x, command: [/b]}\n")
    out = load(shim_tools("k8s", "inject", "--tools-image", TOOLS, input=doc).stdout)[0]
    a, b = out["spec"]["containers"]
    assert a["command"] == ["/shim/shim", "--", "/app"] and a["volumeMounts"][0]["mountPath"] == "/shim"
    assert b["command"] == ["/shim/shim"]
    removed = load(shim_tools("k8s", "inject", "--remove", input=yaml.safe_dump(out)).stdout)[0]
    assert removed["spec"]["containers"][1] == {"name": "b", "image": "x", "command": ["/b"]}
    assert removed["spec"]["volumes"][0]["name"] == "shim" and removed["spec"]["initContainers"]


def test_a_mount_at_shim_written_before_inject_survives_remove():
    doc = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
           "  - {name: a, image: x, command: [/app], volumeMounts: [{name: shim, mountPath: /shim}]}\n"
           "  volumes: [{name: shim, emptyDir: {}}]\n")
    out = shim_tools("k8s", "inject", "--tools-image", TOOLS, input=doc)
    assert out.returncode == 0, out.stderr
    assert load(out.stdout)[0]["spec"]["containers"][0]["volumeMounts"] == [{"name": "shim", "mountPath": "/shim"}]
    removed = shim_tools("k8s", "inject", "--remove", input=out.stdout)
    assert removed.returncode == 0, removed.stderr
    assert load(removed.stdout) == load(doc)


def test_crlf_manifests_come_out_with_plain_newlines(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_bytes(b"apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p # a comment\r\nspec:\r\n  containers:\r\n"
                     b"  - {name: a, image: x, command: [/app]}\r\n")
    proc = subprocess.run([sys.executable, "-m", "shim", "k8s", "inject", "--tools-image", TOOLS, "-f", path],
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 0 and b"\r" not in proc.stdout and b"name: p # a comment\n" in proc.stdout
