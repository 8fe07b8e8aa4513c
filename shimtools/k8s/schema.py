"""Shape checks of the pod fields the tooling reads and writes, before it touches them.

Kubernetes refuses a pod whose `command` is a string or whose annotation value
is a number; the tooling must too, with one line naming the field, instead of
splitting `"sleep 10"` into characters or crashing on `[1, true]`.  Only the
fields inject, remove, lint and the webhook use are checked: metadata and its
annotations, the container lists (name, image, command, args, volumeMounts),
volumes and nodeSelector.  Everything else passes through untouched.

Hand-written on purpose: the maintained alternative (kubernetes-validate with
the OpenAPI schemas of every Kubernetes release) is tens of MB in the tools
image, needs the cluster's version to pick a schema, and would refuse documents
for fields the tooling never reads.  These checks follow the core/v1 types.
"""

import re

from ..messages import kind_of, show
from .manifests import CONTAINER_KEYS, ShapeError, describe

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")  # core/v1 container names


def _fail(operation, workload, path, cause, fix):
    raise ShapeError(operation, f"{path} of {describe(workload)}", cause, fix)


def _mapping(operation, workload, path, value):
    """A mapping or absent (None); returns it as a mapping ({} for absent)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(operation, workload, path, f"must be a mapping, not {kind_of(value)}",
              f"write {path.rsplit('.', 1)[-1]} as `key: value` lines")
    return value


def _list(operation, workload, path, value):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(operation, workload, path, f"must be a list, not {kind_of(value)}",
              f"write {path.rsplit('.', 1)[-1]} as a list (`- item` lines or [a, b])")
    return value


def _string_map(operation, workload, path, value):
    for key, item in _mapping(operation, workload, path, value).items():
        if not isinstance(key, str) or not isinstance(item, str):
            bad = key if not isinstance(key, str) else item
            _fail(operation, workload, f"{path}.{key}", f"must map strings to strings, not {kind_of(bad)}",
                  "quote the value (e.g. \"false\", \"8080\")")


def words(operation, workload, path, value):
    """command/args: a list of strings, or absent.  A string is refused, never split (Kubernetes refuses it)."""
    if value is None:
        return []
    if isinstance(value, str):
        _fail(operation, workload, path, "must be a list of strings, not a string",
              f"write it as a list, e.g. {path.rsplit('.', 1)[-1]}: [\"sleep\", \"10\"]")
    if not isinstance(value, list):
        _fail(operation, workload, path, f"must be a list of strings, not {kind_of(value)}",
              f"write it as a list, e.g. {path.rsplit('.', 1)[-1]}: [\"sleep\", \"10\"]")
    for i, word in enumerate(value):
        if not isinstance(word, str):
            _fail(operation, workload, f"{path}[{i}]", f"must be a string, not {kind_of(word)}",
                  "quote the word (e.g. \"1\", \"true\")")
    return value


def check_metadata(operation, workload, path, metadata):
    meta = _mapping(operation, workload, path, metadata)
    _string_map(operation, workload, f"{path}.annotations", meta.get("annotations"))
    _string_map(operation, workload, f"{path}.labels", meta.get("labels"))


def check_container(operation, workload, path, container):
    if not isinstance(container, dict):
        _fail(operation, workload, path, f"must be a mapping, not {kind_of(container)}",
              "write each container as a mapping with name and image")
    name = container.get("name")
    if not isinstance(name, str) or not name:
        _fail(operation, workload, f"{path}.name", f"must be a non-empty string, not {kind_of(name)}",
              "give every container a name")
    if not _DNS_LABEL.match(name):
        _fail(operation, workload, f"{path}.name", f"{show(name)} is not a DNS-1123 label",
              "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit")
    where = f"{path[:path.rindex('[')]}[{name}]"
    for key in ("image", "workingDir"):
        if container.get(key) is not None and not isinstance(container[key], str):
            _fail(operation, workload, f"{where}.{key}", f"must be a string, not {kind_of(container[key])}",
                  "quote it")
    words(operation, workload, f"{where}.command", container.get("command"))
    words(operation, workload, f"{where}.args", container.get("args"))
    for i, mount in enumerate(_list(operation, workload, f"{where}.volumeMounts", container.get("volumeMounts"))):
        if not isinstance(mount, dict) or not isinstance(mount.get("name"), str) or \
                not isinstance(mount.get("mountPath"), str):
            _fail(operation, workload, f"{where}.volumeMounts[{i}]", "must be a mapping with string name and "
                  "mountPath", "write e.g. {name: data, mountPath: /data}")


def check_template(operation, workload, template):
    """Raise a one-line ShapeError unless the fields the tooling uses have the types core/v1 allows."""
    prefix = "" if template is workload else "template."
    if template is not workload:
        check_metadata(operation, workload, "metadata", workload.get("metadata"))
    check_metadata(operation, workload, f"{prefix}metadata", template.get("metadata"))
    spec = _mapping(operation, workload, f"{prefix}spec", template.get("spec"))
    for key in CONTAINER_KEYS:
        for i, container in enumerate(_list(operation, workload, f"{prefix}spec.{key}", spec.get(key))):
            check_container(operation, workload, f"{prefix}spec.{key}[{i}]", container)
    for i, volume in enumerate(_list(operation, workload, f"{prefix}spec.volumes", spec.get("volumes"))):
        if not isinstance(volume, dict) or not isinstance(volume.get("name"), str):
            _fail(operation, workload, f"{prefix}spec.volumes[{i}]", "must be a mapping with a string name",
                  "write e.g. {name: data, emptyDir: {}}")
    _string_map(operation, workload, f"{prefix}spec.nodeSelector", spec.get("nodeSelector"))
