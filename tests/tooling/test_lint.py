"""`shim k8s lint`: manifests, Helm charts (values and templates), kustomize overlays; text, json, sarif."""

import json

import pytest

from tooling_support import CHARTS, CORPUS, shim_tools, write_layout

TAIL = "sets command, which replaces the image's ENTRYPOINT (shim) — move it to args or prefix /shim/shim --"


def test_charts_and_kustomize_findings_with_file_and_line():
    proc = shim_tools("k8s", "lint", CHARTS)
    assert proc.returncode == 1, proc.stderr
    c = str(CHARTS)
    assert proc.stdout.splitlines() == [
        f"{c}/kustomize/overlays/prod/debug-command.yaml:10: container api of Deployment api {TAIL}",
        f"{c}/kustomize/overlays/prod/kustomization.yaml:20: container api of Deployment api {TAIL}",
        f"{c}/kustomize/overlays/prod/kustomization.yaml:26: container #0 of Deployment api {TAIL}",
        f"{c}/web/values-prod.yaml:3: values key migrations.command sets a container command, which replaces the "
        "image's ENTRYPOINT (shim) — move it to args or prefix /shim/shim --",
        f"{c}/web/values.yaml:8: values key app.command sets a container command, which replaces the "
        "image's ENTRYPOINT (shim) — move it to args or prefix /shim/shim --",
        f'{c}/web/templates/deployment.yaml:18: container web of Deployment {{{{ include "web.fullname" . }}}} {TAIL}',
        f"{c}/worker/templates/cronjob.yaml:15: container wait-db of CronJob {{{{ .Release.Name }}}}-sweep {TAIL}",
    ]


def test_manifests_every_container_with_a_command_is_reported():
    proc = shim_tools("k8s", "lint", CORPUS / "pod-multi.yaml", CORPUS / "cronjob.yaml", CORPUS / "list.json")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1
    assert lines[0] == f"{CORPUS}/pod-multi.yaml:17: container migrate of Pod web-0 {TAIL}"
    assert [line.split(": container ")[1].split(" sets")[0] for line in lines] == [
        "migrate of Pod web-0", "app of Pod web-0", "logs of Pod web-0", "backup of CronJob nightly",
        "main of Deployment from-list"]


def test_clean_input_exits_zero(tmp_path):
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                                      "  - {name: a, image: x, args: [serve]}\n"
                                      "  - {name: b, image: x, command: [/shim/shim, --, app]}\n")
    proc = shim_tools("k8s", "lint", tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_json_and_sarif_formats():
    proc = shim_tools("k8s", "lint", "--format", "json", CORPUS / "job.yaml")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == [{"file": f"{CORPUS}/job.yaml", "line": 13, "container": "report",
                                        "workload": "Job report", "image": "registry.example/app:1",
                                        "message": f"container report of Job report {TAIL}"}]
    proc = shim_tools("k8s", "lint", "--format", "sarif", CORPUS / "job.yaml")
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == sarif["runs"][0]["tool"]["driver"]["rules"][0]["id"]
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": f"{CORPUS}/job.yaml"},
                                                          "region": {"startLine": 13}}


def test_image_entrypoint_lookup_reports_only_wrapped_images(tmp_path):
    write_layout(tmp_path / "wrapped", {"amd64": {"Entrypoint": ["/shim", "--", "/app"]}})
    write_layout(tmp_path / "plain", {"amd64": {"Entrypoint": ["/app"]}})
    (tmp_path / "m.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - {name: a, image: reg.example/wrapped:1, command: [/app, x]}\n"
        "  - {name: b, image: reg.example/plain:1, command: [/app, y]}\n")
    proc = shim_tools("k8s", "lint", "--image-entrypoint-lookup", "--cache-dir", "",
                      "--image-source", f"reg.example/wrapped:1=oci:{tmp_path / 'wrapped'}",
                      "--image-source", f"reg.example/plain:1=oci:{tmp_path / 'plain'}", tmp_path / "m.yaml")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == f"{tmp_path}/m.yaml:6: container a of Pod p {TAIL}\n"


@pytest.mark.parametrize("text, where", [("kind: Pod\nspec: {a: [}\n", ":2:"), ("a: b\n  c: d\n", ":2:")])
def test_invalid_yaml_is_one_line_with_position(tmp_path, text, where):
    (tmp_path / "bad.yaml").write_text(text)
    proc = shim_tools("k8s", "lint", tmp_path / "bad.yaml")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1
    assert f"bad.yaml{where}" in proc.stderr and "invalid YAML" in proc.stderr


def test_missing_path():
    proc = shim_tools("k8s", "lint", "/nonexistent/x.yaml")
    assert proc.returncode == 125
    assert proc.stderr == "shim: lint /nonexistent/x.yaml: no such file or directory; check the path\n"


@pytest.mark.parametrize("body, cause", [
    ("patches:\n- target: true\n  patch: |\n    - op: add\n      path: /spec/template/spec/containers/0/command\n"
     "      value: [a]\n", "patches[0].target of Kustomization"),
    ("patches: just-a-string\n", "patches of Kustomization"),
])
def test_kustomizations_of_the_wrong_shape_are_one_line(tmp_path, body, cause):
    path = tmp_path / "kustomization.yaml"
    path.write_text("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + body)
    proc = shim_tools("k8s", "lint", path)
    assert proc.returncode == 125 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert cause in proc.stderr and str(path) in proc.stderr and "Traceback" not in proc.stderr
