"""The tooling's inputs (issue 16): manifests, AdmissionReviews and Dockerfiles, in-process.

No input makes inject, remove, lint, the webhook or dockerfile wrap fail with
anything but a one-line ShimError; the webhook always answers with a valid
AdmissionReview response (its uid, allowed, a decodable patch); what inject
does, remove undoes; wrap is idempotent; and shimtools.buildkit's port reads
every generated Dockerfile exactly as BuildKit's own parser (the `dockerfile`
package) does.  A few CLI runs check the edge prints one line, never a traceback.
"""

import base64
import copy
import json
import os
import subprocess
import sys

from hypothesis import assume, example, given, settings, strategies as st

from shim.errors import ShimError
from shimtools import buildkit, yamlio
from shimtools.dockerfile import wrap
from shimtools.k8s.inject import Injector, Settings
from shimtools.k8s.lint import Linter
from shimtools.k8s.webhook import BadReview, Mutator, parse_review
from shimtools.registry.oci import ImageInfo
from strategies import HOSTILE, hostile_text
from support import REPO

SCALE = int(os.environ.get("SHIM_FUZZ_SCALE", "1"))
TOOLS = "localhost/shim-tools:fuzz"
IMAGE = {"Entrypoint": ["/entry", "$(X)", "$HOME"], "Cmd": ["serve"]}


def examples(n):
    return settings(max_examples=n * SCALE)


class FakeLookup:
    """Every image runs IMAGE on amd64 and arm64 (records what it was asked)."""

    def __init__(self):
        self.asked = []

    def lookup(self, image, deadline=None):
        self.asked.append(image)
        return ImageInfo(image, {"linux/amd64": IMAGE, "linux/arm64": IMAGE}, "sha256:" + "0" * 64, "fake", True)


def one_line(err):
    message = err.message()
    assert "\n" not in message and "\r" not in message, message
    assert message and "Traceback" not in message and "<class" not in message
    return message


# -- manifests -----------------------------------------------------------------------------

KEYS = ("name", "image", "command", "args", "volumeMounts", "mountPath", "volumes", "containers",
        "initContainers", "metadata", "annotations", "labels", "spec", "template", "nodeSelector",
        "shim.dev/injected", "shim.dev/inject", "kubernetes.io/arch", "kind", "items", "x")
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=16),
                    hostile_text, st.sampled_from(["/shim/shim", "false", "s0;v;c:c1", "app", "--", "a b"]))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS) | hostile_text, inner, max_size=4)),
    max_leaves=10)
words = st.lists(st.one_of(hostile_text, st.sampled_from(["$(PORT)", "$$", "--", "/shim/shim"])), max_size=4)
container = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["app", "side", "install-shim"]), anything)},
    optional={"image": st.one_of(st.just("registry.example/app:1"), anything),
              "command": st.one_of(words, anything), "args": st.one_of(words, anything),
              "volumeMounts": st.one_of(st.builds(lambda: [{"name": "data", "mountPath": "/data"}]),
                                        st.builds(lambda: [{"name": "shim", "mountPath": "/shim"}]), anything),
              "x": anything})
pod_spec = st.fixed_dictionaries(
    {"containers": st.one_of(st.lists(container, min_size=1, max_size=3), anything)},
    optional={"initContainers": st.one_of(st.lists(container, max_size=2), anything),
              "volumes": st.one_of(st.builds(lambda: [{"name": "data", "emptyDir": {}}]), anything),
              "nodeSelector": st.one_of(st.builds(lambda: {"kubernetes.io/arch": "arm64"}), anything)})
metadata = st.one_of(
    st.fixed_dictionaries({"name": st.just("p")}, optional={
        "annotations": st.one_of(st.dictionaries(st.sampled_from(["shim.dev/inject", "shim.dev/injected", "a"]),
                                                 st.one_of(st.sampled_from(["false", "s0;iv;app:c1"]), scalars)),
                                 anything),
        "labels": anything}),
    anything)
template = st.fixed_dictionaries({"spec": st.one_of(pod_spec, anything)}, optional={"metadata": metadata})


def workload(kind, tmpl):
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", **tmpl}
    if kind == "CronJob":
        return {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": tmpl}}}}
    if kind == "List":
        return {"kind": "List", "items": [workload("Pod", tmpl), workload("Deployment", tmpl)]}
    return {"kind": kind, "metadata": {"name": "w"}, "spec": {"template": tmpl}}


documents = st.one_of(
    st.builds(workload, st.sampled_from(["Pod", "Deployment", "Job", "CronJob", "List"]), template),
    st.dictionaries(st.sampled_from(KEYS), anything, max_size=4).map(lambda d: {**d, "kind": "Pod"}),
    anything)
injector_settings = st.builds(
    Settings, tools_image=st.just(TOOLS), mode=st.sampled_from(["emptydir", "pvc"]), version=st.just("0.1.0-abc"),
    containers=st.sampled_from([(), ("app",)]), init_containers=st.booleans(),
    shim_args=st.sampled_from([(), ("--grace=5s",)]), lookup=st.sampled_from(["registry", "in-pod", "off"]))


@examples(200)
@given(documents, injector_settings)
@example({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "command": "sleep 10"}]}},
         Settings(tools_image=TOOLS))
@example({"kind": "Pod", "metadata": "x", "spec": {"containers": [{"name": "a", "command": ["a"]}]}},
         Settings(tools_image=TOOLS))
@example({"kind": "Pod", "metadata": {"annotations": {"shim.dev/injected": 5}}, "spec": {"containers": []}},
         Settings(tools_image=TOOLS))
def test_inject_then_remove_restores_or_refuses_in_one_line(doc, settings_):
    original = copy.deepcopy(doc)
    injector = Injector(settings_, lookup=FakeLookup())
    try:
        injector.inject(doc)
    except ShimError as err:
        one_line(err)
        return
    json.dumps(doc)  # still a JSON document
    injected = copy.deepcopy(doc)
    assert not Injector(settings_, lookup=FakeLookup()).inject(doc) and doc == injected  # idempotent
    try:
        Injector(Settings()).remove(doc)
    except ShimError as err:
        one_line(err)
        return
    if not hand_written(original):  # a /shim/shim container written by hand keeps the volume it needs
        assert omitempty(doc) == omitempty(original)


def hand_written(node):
    """True when some container's command already starts with /shim/ (inject leaves it the volume)."""
    if isinstance(node, dict):
        command = node.get("command")
        if isinstance(command, list) and command and isinstance(command[0], str) and command[0].startswith("/shim/"):
            return True
        return any(hand_written(v) for v in node.values())
    return isinstance(node, list) and any(hand_written(v) for v in node)


OMITEMPTY = {"command", "args", "volumeMounts", "volumes", "initContainers", "nodeSelector", "annotations",
             "metadata"}


def omitempty(node):
    """The document as the API server stores it: these fields are `omitempty` in core/v1, so an empty
    list or map (or null) is the same as no field (inject may not keep `command: []` as written)."""
    if isinstance(node, dict):
        return {k: omitempty(v) for k, v in node.items() if not (k in OMITEMPTY and v in (None, [], {}))}
    if isinstance(node, list):
        return [omitempty(v) for v in node]
    return node


@examples(200)
@given(documents)
def test_lint_finds_or_refuses_in_one_line(doc):
    linter = Linter()
    try:
        linter._doc(doc, "fuzz.yaml", 0)
    except ShimError as err:
        one_line(err)
        return
    for finding in linter.findings:
        assert "\n" not in finding.text()


kustomizations = st.fixed_dictionaries(
    {"kind": st.just("Kustomization")},
    optional={key: st.one_of(
        st.lists(st.one_of(
            st.fixed_dictionaries({"patch": st.sampled_from([
                "- op: add\n  path: /spec/template/spec/containers/0/command\n  value: [a]\n",
                "kind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n"
                "      - {name: a, command: [x]}\n", "a: [", "kind: Kustomization\npatches: [{patch: \"x\\ny\"}]\n"])},
                optional={"target": anything}),
            anything), max_size=3),
        anything) for key in ("patches", "patchesStrategicMerge", "patchesJson6902")})


@examples(200)
@given(kustomizations)
def test_lint_reads_kustomizations_or_refuses_in_one_line(doc):
    try:
        Linter()._doc(doc, "kustomization.yaml", 0)
    except ShimError as err:
        one_line(err)


@examples(200)
@given(anything, st.lists(st.sampled_from(["kind: Deployment", "  name: x", "containers:", "initContainers:",
                                           "- name: a", "  - name: b", "  command: [x]", "    command: /shim/shim",
                                           "command:", "{{ if }}", "#", " ", "\t- name: c"]),
                          max_size=12).map("\n".join))
def test_lint_reads_helm_values_and_templates_or_refuses_in_one_line(values, template_text):
    linter = Linter()
    try:
        linter._values_node(values, [], "values.yaml")
    except ShimError as err:
        one_line(err)
    linter.template_text(template_text, "templates/x.yaml")
    assert all("\n" not in f.text() for f in linter.findings)


yaml_text = st.lists(st.sampled_from([*HOSTILE, "kind: Pod\n", "spec:\n", "  containers:\n", "  - name: a\n",
                                      "    command: ", "[", "]", "{", "}", "&a ", "*a", "!!python/object ", "---\n",
                                      "<<: ", "? ", "- ", "\n", "  ", "%YAML 1.1\n", "'", "|\n"]),
                     max_size=30).map("".join)


@examples(150)
@given(yaml_text)
@example("a: " + "[" * 600 + "]" * 600)
def test_yaml_streams_load_or_refuse_in_one_line(text):
    try:
        docs = yamlio.load_all(text, "fuzz.yaml")
        yamlio.dump_all([d for d in docs if d is not None])
    except ShimError as err:
        one_line(err)


# -- AdmissionReviews ----------------------------------------------------------------------


def admission_review(obj, uid, kind):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": kind, "namespace": "ns", "operation": "CREATE", "object": obj}}


reviews = st.builds(admission_review, st.one_of(documents.map(lambda d: d.get("spec") and d if isinstance(d, dict)
                                                               else d), anything),
                    st.one_of(st.just("u-1"), anything), st.one_of(st.just({"kind": "Pod"}), anything))


def check_response(response, uid):
    assert response["uid"] == uid and isinstance(response["allowed"], bool)
    json.dumps(response)
    if "patch" in response:
        ops = json.loads(base64.b64decode(response["patch"]))
        assert response["patchType"] == "JSONPatch" and all(op["op"] in ("add", "remove") for op in ops)
    for text in response.get("warnings", []) + [response.get("status", {}).get("message", "")]:
        assert "\n" not in text and "Traceback" not in text


@examples(200)
@given(reviews, st.sampled_from(["allow", "deny"]))
def test_every_admission_review_gets_an_answer(review, on_error):
    body = json.dumps(review).encode()
    try:
        request, too_deep = parse_review(body)
    except BadReview as err:
        assert "\n" not in str(err)
        return
    check_response(Mutator(Settings(tools_image=TOOLS), FakeLookup(), on_error=on_error).review(request, too_deep),
                   request["uid"])


json_bytes = st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b"1", b'"uid"', b'"a"',
                                       b"null", b' "kind": "AdmissionReview"', b"\xff", b"[" * 2000]),
                      max_size=40).map(b"".join)


@examples(300)
@given(json_bytes)
@example(b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "d", "kind": '
         b'{"kind": "Pod"}, "object": {"spec": ' + b"[" * 100000 + b"]" * 100000 + b"}}}")
def test_any_body_is_a_bad_review_or_an_answer(body):
    try:
        request, too_deep = parse_review(body)
    except BadReview as err:
        assert "\n" not in str(err)
        return
    check_response(Mutator(Settings(tools_image=TOOLS), FakeLookup()).review(request, too_deep), request["uid"])


# -- Dockerfiles ---------------------------------------------------------------------------

DOCKERFILE_LINES = [
    "FROM debian", "FROM scratch", "FROM debian AS base", "FROM base", "FROM --platform=linux/arm64 debian",
    "FROM --platform linux/arm64 debian", "ARG BASE=debian", "FROM ${BASE}", "FROM", "# comment", "",
    "# escape=`", "# syntax=docker/dockerfile:1", 'ENTRYPOINT ["/app", "--x"]', "ENTRYPOINT exec app \"$HOME\"",
    'ENTRYPOINT ["a"] junk', "ENTRYPOINT [1]", "ENTRYPOINT", 'CMD ["serve"]', "CMD serve --all", "CMD [",
    'SHELL ["/bin/bash", "-c"]', "SHELL /bin/bash -c", "SHELL []", "RUN <<EOF", "RUN cat <<-E 2<<'F G'",
    'RUN echo "<<EOF in a string"', "RUN echo '<<E' <<G", 'RUN ["echo", "<<E"]', "COPY <<A <<B /etc/",
    "ONBUILD RUN <<E", "EOF", "E", "\tE", "A", "B", "G", "F G", "RUN x \\", "RUN x `", "  && y", "  # inside",
    "COPY --from=localhost/shim-tools:fuzz /shim /shim", 'ENTRYPOINT ["/shim", "--", "/app"]', "USER 65534",
    "WORKDIR /x y", "RUN --mount=type=cache,target=\"/a b\" make", "\ufeffFROM debian", "from debian as Base",
    "ENTRYPOINT [\"é\", \"\\u2028\"]", "RUN echo 'unterminated <<E", "expose 80",
]
dockerfiles = st.builds(lambda lines, crlf, end: ("\r\n" if crlf else "\n").join(lines) + end,
                        st.lists(st.sampled_from(DOCKERFILE_LINES) | hostile_text.filter(lambda s: "\n" not in s),
                                 max_size=14),
                        st.booleans(), st.sampled_from(["", "\n", "\r\n"]))


def _command_tuples(commands):
    return [(*c[:8], tuple(tuple(h) for h in c[8])) for c in commands]


def _read(parse, text):
    try:
        return _command_tuples(parse(text))
    except ValueError as err:  # dockerfile.GoParseError and buildkit.ParseError are ValueErrors
        return ("refused", type(err).__name__ != "")


@examples(400)
@given(dockerfiles)
@example('FROM a\nCOPY <<A <<B /dst/\nENTRYPOINT ["fake"]\nA\nENTRYPOINT ["fake2"]\nB\n')
@example("FROM a\nRUN cat <<-E 2<<F\n\tx\n\tE\ny\nF\n")
@example('FROM a\r\nENTRYPOINT a \\\r\n  b\r\n')
def test_the_port_reads_dockerfiles_as_buildkit_does(text):
    import dockerfile  # BuildKit's parser (dev extras); never skipped

    assume("\x00" not in text)  # the package reads a C string (up to a NUL); buildkit.parse refuses NUL

    assert _read(buildkit.port, text) == _read(lambda t: buildkit.from_package(dockerfile.parse_string(t)), text)


@examples(300)
@given(dockerfiles)
@example("FROM debian\n0\\")  # ends inside a continuation: the block would join the last instruction
def test_wrap_is_one_line_error_or_idempotent(text):
    try:
        new, changed = wrap(text, TOOLS, lookup=FakeLookup())
    except ShimError as err:
        one_line(err)
        return
    again, changed_again = wrap(new, TOOLS, lookup=FakeLookup())
    assert (again, changed_again) == (new, False)
    if changed:
        final_entry = [c for c in buildkit.parse(new) if c.cmd.upper() == "ENTRYPOINT"][-1]
        assert final_entry.json and final_entry.value[:1] == ("/shim",) and "--" in final_entry.value
        lines = text.split("\n")
        if len(lines) > 1 and all(line.endswith("\r") for line in lines[:-1]):  # a CRLF file stays CRLF
            assert all(line.endswith("\r") for line in new.split("\n")[:-1])


# -- through the CLI edge: one line on stderr, exit 125, never a traceback -----------------


def _cli(*args, input):
    # A dead loopback proxy for anything not on loopback: no generated input can reach a public registry.
    guard = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "shim", *args], input=input, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **guard})


@settings(max_examples=10 * SCALE)
@given(st.one_of(yaml_text, documents.map(json.dumps)), st.sampled_from(["inject", "lint"]))
def test_cli_inject_and_lint_print_one_line(text, command):
    args = ("k8s", "inject", "--tools-image", TOOLS, "--lookup", "off", "-f", "-") if command == "inject" else \
        ("k8s", "lint", "/dev/stdin")
    proc = _cli(*args, input=text.encode("utf-8", "surrogatepass"))
    assert proc.returncode in (0, 1, 125), proc.stderr
    assert b"Traceback" not in proc.stderr
    if proc.returncode == 125:
        assert proc.stderr.count(b"\n") == 1 and proc.stderr.startswith(b"shim: ")


# Only the listed lines: every FROM they hold resolves to an --image-source or a stage, never a registry.
listed_dockerfiles = st.builds(lambda lines, crlf: ("\r\n" if crlf else "\n").join(lines) + "\n",
                               st.lists(st.sampled_from(DOCKERFILE_LINES), max_size=12), st.booleans())


@settings(max_examples=10 * SCALE)
@given(listed_dockerfiles)
def test_cli_wrap_prints_one_line(text):
    proc = _cli("dockerfile", "wrap", "-f", "-", "--tools-image", TOOLS, "--cache-dir", "",
                "--image-source", "debian=oci:/nonexistent", "--image-source", "base=oci:/nonexistent",
                input=text.encode())
    assert proc.returncode in (0, 125), proc.stderr
    assert b"Traceback" not in proc.stderr
    if proc.returncode == 125:
        assert proc.stderr.count(b"\n") == 1 and proc.stderr.startswith(b"shim: ")
