"""Input shapes the Kubernetes schema does not allow: one line and exit 125 from inject, remove and lint,
an AdmissionReview answer per --on-error from the webhook — never a traceback, never a split string."""

import json

import pytest

from shimtools.k8s.inject import Settings
from shimtools.k8s.webhook import MAX_DEPTH, Mutator, cut_deep, parse_review
from tooling_support import shim_tools
from webhook_support import POD, TOOLS, review

CONTAINER = "  containers:\n  - name: c\n    image: registry.example/app:1\n"
# (pod spec YAML under `spec:`, metadata YAML, words the one-line error must contain)
CASES = {
    "command-numbers": (CONTAINER + "    command: [1, true]\n", "{name: p}",
                        ["spec.containers[c].command[0] of Pod p", "must be a string, not a number"]),
    "args-number": (CONTAINER + "    args: 5\n", "{name: p}", ["spec.containers[c].args", "not a number"]),
    "command-mapping": (CONTAINER + "    command: {a: b}\n", "{name: p}", ["command", "not a mapping"]),
    # D16: a string is refused, never split into characters.
    "command-string": (CONTAINER + "    command: sleep 10\n", "{name: p}",
                       ["spec.containers[c].command", "must be a list of strings, not a string"]),
    "args-string": (CONTAINER + "    command: [sh]\n    args: \"-c date\"\n", "{name: p}",
                    ["spec.containers[c].args", "not a string"]),
    "metadata-string": (CONTAINER + "    command: [a]\n", "x", ["metadata of Pod", "must be a mapping, not a string"]),
    "annotation-number": (CONTAINER + "    command: [a]\n", "{name: p, annotations: {shim.dev/injected: 5}}",
                          ["metadata.annotations.shim.dev/injected", "strings to strings"]),
    "annotations-list": (CONTAINER + "    command: [a]\n", "{name: p, annotations: [a]}",
                         ["metadata.annotations", "must be a mapping, not a list"]),
    "containers-string": ("  containers: x\n", "{name: p}", ["spec.containers of Pod p", "must be a list"]),
    "container-number": ("  containers: [5]\n", "{name: p}", ["spec.containers[0]", "must be a mapping"]),
    "container-no-name": ("  containers: [{image: x, command: [a]}]\n", "{name: p}",
                          ["spec.containers[0].name", "non-empty string"]),
    "name-not-a-label": ("  containers: [{name: \"a,b:c\", image: x, command: [a]}]\n", "{name: p}",
                         ["spec.containers[0].name", "is not a DNS-1123 label"]),
    "image-number": ("  containers: [{name: c, image: 5, command: [a]}]\n", "{name: p}",
                     ["spec.containers[c].image", "must be a string"]),
    "mounts-strings": (CONTAINER + "    command: [a]\n    volumeMounts: [x]\n", "{name: p}",
                       ["volumeMounts[0]", "name and mountPath"]),
    "volumes-number": (CONTAINER + "    command: [a]\n  volumes: 5\n", "{name: p}", ["spec.volumes", "must be a list"]),
    "node-selector": (CONTAINER + "    command: [a]\n  nodeSelector: {kubernetes.io/arch: [amd64]}\n", "{name: p}",
                      ["spec.nodeSelector.kubernetes.io/arch", "strings to strings"]),
}


def pod_yaml(spec, metadata):
    return f"apiVersion: v1\nkind: Pod\nmetadata: {metadata}\nspec:\n{spec}"


def assert_one_line(proc, words):
    assert proc.returncode == 125, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("shim: ") and proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_inject_refuses_with_one_line(case, tmp_path):
    spec, metadata, words = CASES[case]
    path = tmp_path / "pod.yaml"
    path.write_text(pod_yaml(spec, metadata))
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off", "-f", path)
    assert_one_line(proc, [*words, str(path)])


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint_refuses_with_one_line(case, tmp_path):
    spec, metadata, words = CASES[case]
    path = tmp_path / "pod.yaml"
    path.write_text(pod_yaml(spec, metadata))
    assert_one_line(shim_tools("k8s", "lint", path), [*words, str(path)])


def test_string_command_is_never_split_into_characters():
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off",
                      input=pod_yaml(CONTAINER + "    command: \"sleep 10\"\n", "{name: p}"))
    assert proc.returncode == 125 and "[s, l, e" not in proc.stdout + proc.stderr


def test_remove_refuses_a_non_string_record():
    doc = pod_yaml(CONTAINER + "    command: [/shim/shim]\n", "{name: p, annotations: {shim.dev/injected: [1]}}")
    proc = shim_tools("k8s", "inject", "--remove", input=doc)
    assert_one_line(proc, ["shim.dev/injected", "strings to strings"])


@pytest.mark.parametrize("doc, words", [
    ("kind: Deployment\nmetadata: {name: d}\nspec: 5\n", ["spec of Deployment d", "must be a mapping"]),
    ("kind: Deployment\nmetadata: {name: d}\nspec: {template: [1]}\n", ["spec.template of Deployment d"]),
    ("kind: List\nitems: 5\n", ["items of List", "must be a list"]),
])
def test_workload_parts_of_the_wrong_type(doc, words):
    assert_one_line(shim_tools("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off", input=doc), words)


@pytest.mark.parametrize("command", [("k8s", "inject", "--tools-image", TOOLS, "-f"), ("k8s", "lint")])
def test_deeply_nested_yaml_is_one_line(command, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line(shim_tools(*command, path), [str(path), "nested too deeply"])


def test_unknown_kind_of_any_type_passes_through():
    proc = shim_tools("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off", input="kind: [1]\nspec: 5\n")
    assert proc.returncode == 0 and "passed through unchanged" in proc.stderr


# -- the webhook's answer (in-process Mutator: the HTTP side is in test_webhook.py) -----------


def mutator(on_error):
    return Mutator(Settings(tools_image=TOOLS), lookup=None, on_error=on_error)


def malformed_pods():
    for case in sorted(CASES):
        spec, metadata, _ = CASES[case]
        import yaml

        yield case, yaml.safe_load(pod_yaml(spec, metadata))


@pytest.mark.parametrize("case, pod", list(malformed_pods()))
@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_webhook_answers_per_on_error(case, pod, on_error):
    response = mutator(on_error).review(review(pod, uid=case)["request"])
    assert response["uid"] == case and "patch" not in response
    if on_error == "allow":
        assert response["allowed"] is True and response["warnings"][0].startswith("shim: ")
        assert "\n" not in response["warnings"][0]
    else:
        assert response["allowed"] is False and response["status"]["code"] == 400


def test_webhook_admits_a_request_without_object_even_in_deny_mode():
    request = {**review(POD, uid="del")["request"], "operation": "DELETE", "object": None}
    assert mutator("deny").review(request) == {"uid": "del", "allowed": True}


@pytest.mark.parametrize("request_part", [{"kind": "Pod"}, {"kind": ["x"]}, {"object": "x"}, {"namespace": 5}])
def test_webhook_request_fields_of_the_wrong_type(request_part):
    request = {**review(POD, uid="r")["request"], **request_part}
    response = mutator("deny").review(request)
    assert response["uid"] == "r" and response["allowed"] in (True, False)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 5, 5000, 200000])
@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_deeply_nested_review_still_gets_its_answer(levels, on_error):
    pod = json.loads(json.dumps(POD))
    pod["spec"]["containers"][0]["command"] = ["a"]
    body = json.dumps(review(pod, uid="deep")).replace('["a"]', "[" * levels + "]" * levels).encode()
    request, too_deep = parse_review(body)
    response = mutator(on_error).review(request, too_deep)
    assert response["uid"] == "deep" and "patch" not in response
    assert response["allowed"] is (on_error == "allow")
    text = response["warnings"][0] if on_error == "allow" else response["status"]["message"]
    assert "nests more than" in text


def test_cut_deep_keeps_brackets_in_strings_and_the_shallow_part():
    body = b'{"s": "[[[{", "a": ' + b"[" * (MAX_DEPTH + 3) + b"]" * (MAX_DEPTH + 3) + b', "z": 1}'
    doc = json.loads(cut_deep(body))
    assert doc["s"] == "[[[{" and doc["z"] == 1
