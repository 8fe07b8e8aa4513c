"""Where the pod template lives in each workload kind, and walking manifest streams.

One table maps kind -> path to the pod template (the mapping holding `metadata`
and `spec`); `List` documents recurse into `items`.  Works on plain dicts and on
ruamel's round-trip maps alike, so the CLI (comments kept) and the webhook (JSON)
share it.
"""

from shim.errors import ShimError

from ..messages import kind_of


class ShapeError(ShimError):
    """A field has a type Kubernetes' core/v1 schema does not allow (the message says which)."""

# kind -> keys from the document to the pod template ({metadata, spec}); () is the document itself.
POD_TEMPLATE_PATHS = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
LIST_KINDS_SUFFIX = "List"  # List, PodList, DeploymentList, ...
CONTAINER_KEYS = ("initContainers", "containers")


def pod_templates(doc):
    """Yield (workload doc, pod template) for every pod template in `doc`, Lists included.

    A missing part (a kustomize patch carries only what it changes) yields nothing;
    a part of the wrong type (`spec: 5`, `items: x`) is refused with one line.
    """
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    if not isinstance(kind, str):
        return
    if kind.endswith(LIST_KINDS_SUFFIX) and kind not in POD_TEMPLATE_PATHS:
        items = doc.get("items")
        if items is not None and not isinstance(items, list):
            raise _shape(doc, "items", items, "list")
        for item in items or []:
            yield from pod_templates(item)
        return
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return
    node, walked = doc, []
    for key in (*path, "spec"):
        parent, node = node, node.get(key)
        walked.append(key)
        if node is None:
            return
        if not isinstance(node, dict):
            raise _shape(doc, ".".join(walked), node, "mapping")
        if key == "spec" and len(walked) == len(path) + 1:
            yield doc, parent


def _shape(doc, path, value, wanted):
    return ShapeError("read", f"{path} of {describe(doc)}", f"must be a {wanted}, not {kind_of(value)}",
                     "fix the manifest (Kubernetes refuses it too)")


def is_known(doc):
    """True when `doc` is a kind inject understands (or a List of them)."""
    if not isinstance(doc, dict):
        return False
    kind = doc.get("kind")
    return isinstance(kind, str) and (kind in POD_TEMPLATE_PATHS or kind.endswith(LIST_KINDS_SUFFIX))


def describe(doc):
    """`Kind name` for messages."""
    if not isinstance(doc, dict):
        return "document"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name") or meta.get("generateName") or "(unnamed)"
    return f"{doc.get('kind', '(no kind)')} {name}"


def containers(spec, init=True):
    """Yield (key, container) for each container of a pod spec; init containers first."""
    for key in CONTAINER_KEYS:
        if key == "initContainers" and not init:
            continue
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield key, container
