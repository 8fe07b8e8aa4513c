"""`shim k8s lint PATH…`: containers whose `command` bypasses a wrapped ENTRYPOINT.

An image built with `ENTRYPOINT ["/shim", "--", …]` only runs shim when the pod
leaves the ENTRYPOINT alone: `command:` replaces it (Chalk's problem).  Sources:

* manifests (.yaml/.yml/.json, multi-document, Lists, every workload kind,
  kustomize bases/overlays and their patch files, inline kustomize patches);
* Helm charts: `values*.yaml` keys named `command` with a value, and
  `templates/` lines `command:` inside a container list (templates are not
  YAML until rendered, so they are read as lines);
* containers already starting with shim (`/shim/shim`, …/shim, shim-linux-*) are fine.

With `--image-entrypoint-lookup` only containers whose image's ENTRYPOINT is
really shim are reported.  Formats: text (`file:line: message`), json, sarif.
"""

import json
import os
import re
import sys
from dataclasses import asdict, dataclass

from shim.errors import ShimError

from .. import yamlio
from .manifests import ShapeError, containers, describe, pod_templates
from .schema import check_template

RULE = "shim-command-bypasses-entrypoint"
MESSAGE = ("container {container} of {workload} sets command, which replaces the image's ENTRYPOINT (shim) "
           "— move it to args or prefix /shim/shim --")
VALUES_MESSAGE = ("values key {key} sets a container command, which replaces the image's ENTRYPOINT (shim) "
                  "— move it to args or prefix /shim/shim --")
YAML_SUFFIXES = (".yaml", ".yml", ".json")
_TEMPLATE_COMMAND = re.compile(r"^(\s*)(?:-\s+)?command:\s*(.*)$")
_TEMPLATE_NAME = re.compile(r"^(\s*)-\s+name:\s*[\"']?([^\"'#\s]+)")
_PATCH_COMMAND = re.compile(r"/(initContainers|containers)/([^/]+)/command$")
_TEMPLATE_LIST = re.compile(r"^\s*(?:initContainers|containers):\s*$")
_TEMPLATE_KIND = re.compile(r"^kind:\s*(\S+)")
_TEMPLATE_META_NAME = re.compile(r"^  name:\s*(.+?)\s*$")


@dataclass
class Finding:
    file: str
    line: int
    container: str
    workload: str
    message: str
    image: str = ""

    def text(self):
        return f"{self.file}:{self.line}: {self.message}"


def starts_with_shim(command):
    first = str(command[0]) if command else ""
    base = os.path.basename(first)
    return base == "shim" or base.startswith("shim-linux-")


def _shim_entrypoint(lookup, image):
    """True when every platform of `image` has shim as the first ENTRYPOINT word."""
    info = lookup.lookup(image)
    return all(starts_with_shim(c.get("Entrypoint") or []) for c in info.platforms.values())


class Linter:
    def __init__(self, lookup=None):
        self.lookup = lookup
        self.findings = []
        self._target = ""  # `Kind name` of the kustomize patch being read, for JSON 6902 ops

    def _keep(self, image):
        return self.lookup is None or (image and _shim_entrypoint(self.lookup, image))

    # -- manifests --------------------------------------------------------------------------

    def manifest_text(self, text, name, line_offset=0):
        for doc in yamlio.load_all(text, name):
            self._doc(doc, name, line_offset)

    def _doc(self, doc, name, line_offset):
        if isinstance(doc, list):  # a JSON 6902 patch (kustomize patchesJson6902, or patches with ops)
            self._json_patch(doc, name, line_offset)
            return
        try:
            templates = list(pod_templates(doc))
            for workload, template in templates:
                check_template("lint", workload, template)
        except ShapeError as err:  # which file, when a directory is read
            err.obj = f"{err.obj} in {name}"
            raise
        for workload, template in templates:
            for _, container in containers(template["spec"]):
                command = container.get("command")
                if not command or starts_with_shim(command) or not self._keep(container.get("image")):
                    continue
                line = yamlio.line_of(container, "command") + line_offset
                self.findings.append(Finding(name, line, container.get("name", "?"), describe(workload),
                                             MESSAGE.format(container=container.get("name", "?"),
                                                            workload=describe(workload)),
                                             container.get("image") or ""))
        if isinstance(doc, dict) and doc.get("kind") == "Kustomization":
            self._kustomize_inline(doc, name, line_offset)

    def _json_patch(self, ops, name, line_offset):
        for op in ops:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
                continue
            m = _PATCH_COMMAND.search(str(op.get("path", "")))
            if m and op.get("value") and not starts_with_shim(op["value"] if isinstance(op["value"], list) else []):
                container = f"#{m.group(2)}" if m.group(2).isdigit() else m.group(2)
                workload = self._target or "the patched workload"
                self.findings.append(Finding(name, yamlio.line_of(op, "path") + line_offset, container, workload,
                                             MESSAGE.format(container=container, workload=workload)))

    def _kustomize_inline(self, doc, name, line_offset):
        for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
            items = doc.get(key) or []
            if not isinstance(items, list):
                raise ShapeError("lint", f"{key} of Kustomization in {name}", "must be a list",
                                 "fix the kustomization (kustomize refuses it too)")
            for i, item in enumerate(items):
                patch = item.get("patch") if isinstance(item, dict) else item
                target = item.get("target") if isinstance(item, dict) else None
                if target is not None and not (isinstance(target, dict) and all(
                        isinstance(target.get(k, ""), str) for k in ("kind", "name"))):
                    raise ShapeError("lint", f"{key}[{i}].target of Kustomization in {name}",
                                     "must be a mapping with string kind and name",
                                     "fix the kustomization (kustomize refuses it too)")
                if isinstance(patch, str) and "\n" in patch:
                    holder = doc[key][i] if isinstance(item, dict) else doc[key]
                    where = yamlio.line_of(holder, "patch") if isinstance(item, dict) else yamlio.line_of(doc, key)
                    self._target = f"{target.get('kind', '')} {target.get('name', '')}".strip() if target else ""
                    # A block scalar starts on the line after its key.
                    self.manifest_text(patch, name, line_offset + where)
                    self._target = ""

    # -- Helm --------------------------------------------------------------------------------

    def values_text(self, text, name):
        for doc in yamlio.load_all(text, name):
            try:
                self._values_node(doc, [], name)
            except RecursionError:
                raise yamlio.too_deep(name) from None

    def _values_node(self, node, path, name):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "command" and value and isinstance(value, (list, str)) and (path or [""])[-1] != "exec":
                    words = value if isinstance(value, list) else [value]
                    if not starts_with_shim(words):
                        dotted = ".".join(map(str, [*path, key]))
                        self.findings.append(Finding(name, yamlio.line_of(node, key), str(path[-1] if path else "?"),
                                                     "values", VALUES_MESSAGE.format(key=dotted)))
                else:
                    self._values_node(value, [*path, key], name)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self._values_node(item, [*path, str(i)], name)

    def template_text(self, text, name):
        """Helm templates as lines: `command:` at the key column of a container's `- name:` item
        (deeper ones are probes' and hooks' `exec.command`)."""
        kind, workload_name, container, column = "workload", "(templated)", "?", None
        item_dash = None  # column of the `-` of the container list's items (env items are deeper)
        for number, line in enumerate(text.splitlines(), 1):
            if m := _TEMPLATE_KIND.match(line):
                kind, container, column = m.group(1), "?", None
            elif m := _TEMPLATE_META_NAME.match(line):
                workload_name = m.group(1)
            elif _TEMPLATE_LIST.match(line):
                item_dash = -1
            elif m := _TEMPLATE_NAME.match(line):
                if item_dash == -1:
                    item_dash = len(m.group(1))
                if item_dash is not None and len(m.group(1)) == item_dash:
                    container, column = m.group(2), line.index("name:")
            elif m := _TEMPLATE_COMMAND.match(line):
                if column is not None and line.index("command:") != column:
                    continue
                value = m.group(2).strip()
                if "shim" in value.split("#")[0] and ("/shim" in value or "shim-linux-" in value):
                    continue
                workload = f"{kind} {workload_name}"
                self.findings.append(Finding(name, number, container, workload,
                                             MESSAGE.format(container=container, workload=workload)))

    # -- paths -------------------------------------------------------------------------------

    def path(self, path):
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "charts")
                in_chart = os.path.exists(os.path.join(root, "Chart.yaml")) or \
                    os.path.exists(os.path.join(os.path.dirname(root), "Chart.yaml"))
                for name in sorted(files):
                    self.file(os.path.join(root, name), in_chart)
        else:
            self.file(path, None)

    def file(self, path, in_chart):
        base = os.path.basename(path)
        parent = os.path.basename(os.path.dirname(path))
        chart_root = os.path.dirname(path) if parent != "templates" else os.path.dirname(os.path.dirname(path))
        if in_chart is None:
            in_chart = os.path.exists(os.path.join(chart_root, "Chart.yaml"))
        if in_chart and parent == "templates" and base.endswith((".yaml", ".yml", ".tpl")):
            self.template_text(yamlio.read_text(path), path)
        elif in_chart and base.startswith("values") and base.endswith((".yaml", ".yml")):
            self.values_text(yamlio.read_text(path), path)
        elif base == "Chart.yaml" or not base.endswith(YAML_SUFFIXES):
            return
        else:
            self.manifest_text(yamlio.read_text(path), path)


def sarif(findings):
    return {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {"name": "shim k8s lint",
                                "rules": [{"id": RULE, "shortDescription": {
                                    "text": "command replaces a wrapped ENTRYPOINT"}}]}},
            "results": [{
                "ruleId": RULE, "level": "error", "message": {"text": f.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file},
                                                    "region": {"startLine": max(f.line, 1)}}}],
            } for f in findings],
        }],
    }


def lint_command(args, lookup=None):
    """Lint args.paths; `lookup` (from the CLI edge) only with --image-entrypoint-lookup."""
    linter = Linter(lookup)
    for path in args.paths:
        if not os.path.exists(path):
            raise ShimError("lint", path, "no such file or directory", "check the path")
        linter.path(path)
    findings = linter.findings
    if args.format == "json":
        sys.stdout.write(json.dumps([asdict(f) for f in findings], indent=2) + "\n")
    elif args.format == "sarif":
        sys.stdout.write(json.dumps(sarif(findings), indent=2) + "\n")
    else:
        for f in findings:
            sys.stdout.write(f.text() + "\n")
    sys.stdout.flush()
    return 1 if findings else 0
