"""Put shim in front of a pod's containers, and take it out again.

For each selected container: mount the shim volume read-only at /shim, set
`command: [/shim/shim]` and `args: [shim options…, --, original command…,
original args…]`.  Kubernetes expands `$(VAR)` in command and args, so the
original command and args are copied verbatim (they expand exactly as before),
while words that come from the image's ENTRYPOINT/CMD, which Kubernetes never
expanded, get every `$` doubled (`$$` is Kubernetes' escape for `$`).

A container without `command` runs its image's ENTRYPOINT, plus CMD unless the
container has `args` (Docker's rule: args replace CMD, never ENTRYPOINT).  The
lookup finds them; with `lookup="in-pod"` they go into `--image-entrypoint` as a
per-platform map and shim picks its node's entry at start (Tekton's platform
command map).

The pod gets the volume and, in emptydir mode, the installer init container of
deploy/emptydir-deployment.yaml (restricted Pod Security, read-only root);
in pvc mode the versioned claim of deploy/pvc-versioned.yaml, mounted read-only.
What was changed is recorded in one annotation, so a second injection changes
nothing and `remove` restores the original exactly.  Works on plain dicts (the
webhook) and on ruamel round-trip maps (the CLI, comments kept).
"""

import json
import re
from dataclasses import dataclass, field

from shim.errors import ShimError

from ..messages import show
from .manifests import describe, pod_templates
from .schema import check_template

VOLUME = "shim"
MOUNT = "/shim"
INSTALL_MOUNT = "/install"  # not /shim: that is the binary itself inside the tools image
INSTALLER = "install-shim"
ANNOTATION = "shim.dev/injected"  # compact record of what inject changed (see Record)
OPT_OUT = "shim.dev/inject"  # "false" on a pod: leave it alone
DEFAULT_CLAIM = "shim-tools"
ARCH_LABEL = "kubernetes.io/arch"
RESTRICTED = {  # the restricted Pod Security profile, and a read-only root
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
INSTALLER_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}


@dataclass(frozen=True)
class Settings:
    tools_image: str = ""
    mode: str = "emptydir"  # emptydir | pvc
    version: str = ""  # pvc: the version directory, <version>-<digest12>
    claim: str = DEFAULT_CLAIM
    arch: str = ""  # pvc: node arch of the binary; default the pod's nodeSelector, else amd64
    containers: tuple = ()  # names to inject; empty: every container
    init_containers: bool = False
    shim_args: tuple = ()
    lookup: str = "registry"  # registry | in-pod | off
    platform: str = ""  # registry lookup of a multi-arch image: which platform's command to write
    pin_digest: bool = False

    def check(self):
        if self.mode not in ("emptydir", "pvc"):
            raise ShimError("parse", "--mode", f"unknown mode {show(self.mode)}", "use emptydir or pvc")
        if self.mode == "emptydir" and not self.tools_image:
            raise ShimError("parse", "--tools-image", "missing", "name the tools image (REGISTRY/shim-tools@sha256:…)")
        if self.mode == "pvc" and not self.version:
            raise ShimError("parse", "--version", "missing for --mode pvc",
                            "give the version directory the populator Job printed (e.g. 0.1.0-0123456789ab)")
        if self.lookup not in ("registry", "in-pod", "off"):
            raise ShimError("parse", "--lookup", f"unknown value {show(self.lookup)}", "use registry, in-pod or off")
        return self


@dataclass
class Record:
    """What inject changed, small enough for one annotation value.

    `s1;iv;app:c2,side:i3d` = 1 shim option before `--`; added the installer
    (i), the volume (v) and/or the node selector (n); container app had a
    2-word command; side had no command and 3 words came from its image, and
    its image got a digest (d); k: the container already mounted something at
    /shim, so its mounts were kept as they were.  Kinds: c<N> command of N words (the rest of
    args after `--` were its args), i<N> N image words (the rest were its args),
    p<0|1> in-pod map (1: the container had args, which are each entry's Cmd).
    Every word is still in `args`; only the boundaries are recorded, because
    `podman kube play` (4.3) refuses annotation values over 63 characters.
    """
    shim_args: int = 0
    added: str = ""
    containers: dict = field(default_factory=dict)  # name -> (kind, n, pinned, kept its own mount)

    @classmethod
    def parse(cls, text):
        try:
            head, added, body = text.split(";", 2)
            if not re.fullmatch(r"s[0-9]+", head):
                raise ValueError(head)
            containers = {}
            for item in filter(None, body.split(",")):
                name, spec = item.rsplit(":", 1)
                m = re.fullmatch(r"([cip])([0-9]+)(d?)(k?)", spec)
                if not m:
                    raise ValueError(spec)
                containers[name] = (m.group(1), int(m.group(2)), bool(m.group(3)), bool(m.group(4)))
            return cls(int(head[1:]), added, containers)
        except (ValueError, IndexError):
            raise ShimError("read", f"annotation {ANNOTATION}", f"cannot parse {show(text)}",
                            "it was edited by hand; delete it and restore the containers yourself") from None

    def format(self):
        body = ",".join(f"{name}:{kind}{n}{'d' if pinned else ''}{'k' if kept else ''}"
                        for name, (kind, n, pinned, kept) in sorted(self.containers.items()))
        return f"s{self.shim_args};{''.join(sorted(set(self.added)))};{body}"


def escape(words):
    """Words Kubernetes must pass through literally: `$` -> `$$` (its escape)."""
    return [w.replace("$", "$$") for w in words or []]


def _flow(words):
    """A list written in flow style when the document is round-trip YAML."""
    try:
        from ruamel.yaml.comments import CommentedSeq
    except ImportError:
        return list(words)
    seq = CommentedSeq(words)
    seq.fa.set_flow_style()
    return seq


def _set_after(mapping, key, value, after=()):
    """mapping[key] = value, a new key placed after the first existing key of `after` (order kept)."""
    if key in mapping or not hasattr(mapping, "insert"):
        mapping[key] = value
        return
    keys = list(mapping.keys())
    for anchor in after:
        if anchor in keys:
            mapping.insert(keys.index(anchor) + 1, key, value)
            return
    mapping[key] = value


def _mount(container):
    """Mount the shim volume read-only at /shim unless something is mounted there; True when added."""
    mounts = container.get("volumeMounts")
    if mounts is None:
        mounts = []
        _set_after(container, "volumeMounts", mounts)
    if any(m.get("mountPath") == MOUNT for m in mounts):
        return False
    mounts.append({"name": VOLUME, "mountPath": MOUNT, "readOnly": True})
    return True


@dataclass
class Injector:
    settings: Settings
    lookup: object = None  # shimtools.registry.oci.Lookup, needed for containers without command
    notes: list = field(default_factory=list)  # warnings for stderr
    seen: set = field(default_factory=set)  # container names met, for --container checks
    deadline: float = None

    # -- documents ----------------------------------------------------------------------

    def inject(self, doc):
        """Inject every pod template in `doc`; True when anything changed."""
        changed = False
        for workload, template in pod_templates(doc):
            check_template("inject", workload, template)
            changed |= self.inject_template(workload, template)
        return changed

    def remove(self, doc):
        changed = False
        for workload, template in pod_templates(doc):
            check_template("remove", workload, template)
            changed |= self.remove_template(workload, template)
        return changed

    # -- one pod template --------------------------------------------------------------

    def _binary(self, spec):
        if self.settings.mode == "emptydir":
            return f"{MOUNT}/shim"
        return f"{MOUNT}/{self.settings.version}/shim-linux-{self._arch(spec)}"

    def _arch(self, spec):
        selector = spec.get("nodeSelector") or {}
        return selector.get(ARCH_LABEL) or self.settings.arch or "amd64"

    def inject_template(self, workload, template):
        meta = template.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if str(annotations.get(OPT_OUT, "")).lower() == "false":
            self.notes.append(f"{describe(workload)}: skipped, annotated {OPT_OUT}: \"false\"")
            return False
        record = Record.parse(annotations[ANNOTATION]) if ANNOTATION in annotations else \
            Record(len(self.settings.shim_args))
        spec = template["spec"]
        binary = self._binary(spec)
        injected_any = False
        for _key, container in self._selected(spec):
            name = container.get("name", "")
            command = list(container.get("command") or [])
            if name in record.containers:
                continue  # already in front of this one
            if command and command[0].startswith(MOUNT + "/"):
                # Written by hand as `/shim/shim -- …`: it only needs the volume.
                injected_any |= _mount(container)
                continue
            if record.containers and record.shim_args != len(self.settings.shim_args):
                raise ShimError("inject", f"container {name} of {describe(workload)}",
                                "the pod was injected with another number of --shim-arg options",
                                "remove the injection first (--remove), then inject again")
            container_args, kind, count, pinned = self._new_args(workload, container)
            _set_after(container, "command", _flow([binary]), after=("image", "name"))
            _set_after(container, "args", _flow(container_args), after=("command",))
            added_mount = _mount(container)
            record.containers[name] = (kind, count, pinned, not added_mount)
            injected_any = True
        if not injected_any:
            return False
        record.added += "".join(self._add_pod_parts(spec))
        if not isinstance(template.get("metadata"), dict):
            template["metadata"] = {}
        if not isinstance(template["metadata"].get("annotations"), dict):
            template["metadata"]["annotations"] = {}
        template["metadata"]["annotations"][ANNOTATION] = record.format()
        return True

    def _selected(self, spec):
        wanted = set(self.settings.containers)
        keys = ("initContainers", "containers") if self.settings.init_containers else ("containers",)
        for key in keys:
            for container in spec.get(key) or []:
                if not isinstance(container, dict) or container.get("name") == INSTALLER:
                    continue
                self.seen.add(container.get("name"))
                if wanted and container.get("name") not in wanted:
                    continue
                yield key, container

    def _add_pod_parts(self, spec):
        """Volume, installer and node selector, each only when missing; returns what was added."""
        added = []
        volumes = spec.get("volumes")
        if volumes is None:
            volumes = []
            spec["volumes"] = volumes
        if not any(v.get("name") == VOLUME for v in volumes):
            if self.settings.mode == "emptydir":
                volumes.append({"name": VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
            else:
                volumes.append({"name": VOLUME, "persistentVolumeClaim": {"claimName": self.settings.claim,
                                                                          "readOnly": True}})
            added.append("v")
        if self.settings.mode == "emptydir":
            inits = spec.get("initContainers")
            if inits is None:
                inits = []
                if "containers" in spec and hasattr(spec, "insert"):  # read in pod order: init first
                    spec.insert(list(spec.keys()).index("containers"), "initContainers", inits)
                else:
                    spec["initContainers"] = inits
            if not any(c.get("name") == INSTALLER for c in inits):
                # First: opted-in init containers after it need the binary already.
                inits.insert(0, self._installer())
                added.append("i")
        else:
            selector = spec.get("nodeSelector")
            if not isinstance(selector, dict) or ARCH_LABEL not in selector:
                if not isinstance(selector, dict):
                    spec["nodeSelector"] = {}
                # The binary's name carries the arch: the pod must land on a node of that arch.
                spec["nodeSelector"][ARCH_LABEL] = self._arch(spec)
                added.append("n")
        return added

    def _installer(self):
        return {
            "name": INSTALLER,
            "image": self.settings.tools_image,
            "args": _flow([INSTALL_MOUNT]),
            "resources": json.loads(json.dumps(INSTALLER_RESOURCES)),
            "securityContext": json.loads(json.dumps(RESTRICTED)),
            "volumeMounts": [{"name": VOLUME, "mountPath": INSTALL_MOUNT}],
        }

    def _new_args(self, workload, container):
        """args for the shimmed container: shim options, then what it ran before."""
        shim = list(self.settings.shim_args)
        command = list(container.get("command") or [])
        args = list(container.get("args") or [])
        if command:
            return shim + ["--", *command, *args], "c", len(command), False
        where = f"container {container.get('name', '?')} of {describe(workload)}"
        image = container.get("image")
        if self.settings.lookup == "off" or self.lookup is None:
            raise ShimError("inject", where, "has no command, and image lookup is off",
                            "set the container's command, or drop --lookup off so the image's ENTRYPOINT is read")
        if not image:
            raise ShimError("inject", where, "has neither command nor image", "set the container's image")
        info = self.lookup.lookup(image, self.deadline)
        pinned = bool(self.settings.pin_digest and info.pinnable and "@" not in image)
        if pinned:  # image:tag@digest: the digest decides what runs, the tag stays readable (and removable)
            container["image"] = f"{image}@{info.digest}"
        if self.settings.lookup == "in-pod":
            per_platform = {}
            for plat, conf in sorted(info.platforms.items()):
                entry = escape(conf.get("Entrypoint"))
                rest = args if args else escape(conf.get("Cmd"))
                if not entry and not rest:
                    raise ShimError("inject", where, f"image {image} has neither ENTRYPOINT nor CMD for {plat}",
                                    "set the container's command")
                per_platform[plat] = {"Entrypoint": entry, "Cmd": rest}
            if any("$(" in a for a in args):
                self.notes.append(f"{where}: $(VAR) in args is expanded inside the --image-entrypoint JSON; "
                                  "a value with \" or \\ would break it (set command to avoid the lookup)")
            return (shim + ["--image-entrypoint", json.dumps(per_platform, separators=(",", ":"))], "p",
                    1 if args else 0, pinned)
        if self.settings.platform:
            conf = info.config(self.settings.platform)
        else:
            conf = info.same_everywhere()
            if conf is None:
                raise ShimError("inject", where, f"image {image} runs a different command on each platform "
                                f"({', '.join(sorted(info.platforms))})",
                                "use --lookup in-pod (shim picks per node) or --platform PLATFORM")
        image_words = escape(conf.get("Entrypoint")) + ([] if args else escape(conf.get("Cmd")))
        if not image_words and not args:
            raise ShimError("inject", where, f"image {image} has neither ENTRYPOINT nor CMD",
                            "set the container's command")
        return shim + ["--", *image_words, *args], "i", len(image_words), pinned

    # -- removal -------------------------------------------------------------------------

    def remove_template(self, workload, template):
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if ANNOTATION not in annotations:
            return False
        record = Record.parse(annotations[ANNOTATION])
        spec = template["spec"]
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                entry = record.containers.get(container.get("name"))
                if entry is None or key == "initContainers" and container.get("name") == INSTALLER:
                    continue
                command, args = _original(container, record.shim_args, *entry[:2], workload)
                for field_name, words in (("command", command), ("args", args)):
                    if words:
                        container[field_name] = _flow(words)
                    else:
                        container.pop(field_name, None)
                if entry[2] and "@" in str(container.get("image")):
                    container["image"] = container["image"].rsplit("@", 1)[0]
                if entry[3]:
                    continue  # its /shim mount was there before inject: it stays
                mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME]
                if mounts:
                    container["volumeMounts"][:] = mounts
                else:
                    container.pop("volumeMounts", None)
        if _still_mounted(spec, record):
            record.added = ""  # a container written by hand as /shim/shim keeps the volume and installer
        if "v" in record.added:
            spec["volumes"][:] = [v for v in spec.get("volumes") or [] if v.get("name") != VOLUME]
            if not spec["volumes"]:
                del spec["volumes"]
        if "i" in record.added:
            spec["initContainers"][:] = [c for c in spec.get("initContainers") or [] if c.get("name") != INSTALLER]
            if not spec["initContainers"]:
                del spec["initContainers"]
        if "n" in record.added and isinstance(spec.get("nodeSelector"), dict):
            spec["nodeSelector"].pop(ARCH_LABEL, None)
            if not spec["nodeSelector"]:
                del spec["nodeSelector"]
        del annotations[ANNOTATION]
        if not annotations:
            del template["metadata"]["annotations"]
            if not template["metadata"]:
                del template["metadata"]
        return True


def _still_mounted(spec, record):
    return any(m.get("name") == VOLUME for key in ("initContainers", "containers") for c in spec.get(key) or []
               if c.get("name") != INSTALLER and c.get("name") not in record.containers
               for m in c.get("volumeMounts") or [])


def _original(container, shim_args, kind, count, workload):
    """(command, args) the container had before inject, from its args and the record."""
    rest = list(container.get("args") or [])[shim_args:]
    if kind == "p":
        if len(rest) != 2 or rest[0] != "--image-entrypoint":
            raise _edited(container, workload)
        entries = list(json.loads(rest[1]).values())
        return [], (list(entries[0].get("Cmd") or []) if count and entries else [])
    if not rest or rest[0] != "--":
        raise _edited(container, workload)
    words = rest[1:]
    if kind == "c":
        return words[:count], words[count:]
    return [], words[count:]


def _edited(container, workload):
    return ShimError("remove", f"container {container.get('name', '?')} of {describe(workload)}",
                     "its args no longer have the shape inject wrote", "restore the container by hand")
