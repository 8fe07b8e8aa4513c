"""Where the pod template lives in each workload kind, and walking manifest streams.

One table maps kind -> path to the pod template (the mapping holding `metadata`
and `spec`); `List` documents recurse into `items`.  Works on plain dicts and on
ruamel's round-trip maps alike, so the CLI (comments kept) and the webhook (JSON)
share it.
"""

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
    """Yield (workload doc, pod template) for every pod template in `doc`, Lists included."""
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith(LIST_KINDS_SUFFIX) and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from pod_templates(item)
        return
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return
    node = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get("spec"), dict):
        yield doc, node


def is_known(doc):
    """True when `doc` is a kind inject understands (or a List of them)."""
    if not isinstance(doc, dict):
        return False
    kind = doc.get("kind")
    return kind in POD_TEMPLATE_PATHS or (isinstance(kind, str) and kind.endswith(LIST_KINDS_SUFFIX))


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
